"""Engines that run a SentenceTransformer's forward pass: PyTorch and OpenVINO.

Both expose the same two steps, so :func:`knowledge_map.embed.embed_texts`
can tokenise the next batch in a background thread while the current one
runs:

- ``prepare(texts, prompt)`` tokenises on the host (and, for CUDA, pins the
  tensors so the copy to the device is asynchronous);
- ``encoder(features)`` returns the batch's float32 sentence embeddings as a
  torch tensor on the encoder's device, without waiting for the device.

``context()`` wraps the whole loop (inference mode, and autocast for
bfloat16 on the CPU, so autocast's weight-cast cache lives for the loop).

OpenVINO runs an IR converted locally from the PyTorch weights (no model
hub needed), cached under ``cache_dir`` keyed by the digest of the model's
files (:func:`knowledge_map.identity.model_sha256`: weights, config and
tokenizer, for a hub id those of its downloaded snapshot), the module
layout and the library versions, and checked against PyTorch float32 on
fixed sentences before use.  Each cache entry holds the record it was made
for (``identity.json``), compared on every load; a model whose files are
unknown is converted in memory and never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge_map.errors import KnowledgeMapError

log = logging.getLogger(__name__)

#: Sentences of different lengths the converted model is checked on.
CHECK_SENTENCES = (
    "Photosynthesis.",
    "Volcano. A rupture in the crust of a planet through which lava, ash and gases escape.",
    "Jazz. A music genre that originated in the African-American communities of New Orleans in the late "
    "19th and early 20th centuries, with its roots in blues and ragtime.",
)
#: Minimum cosine between the converted model (float32) and PyTorch float32 on CHECK_SENTENCES.
CONVERSION_MIN_COSINE = 0.9999


class TorchEncoder:
    """The model's own PyTorch forward pass on its device; ``autocast`` = e.g. ``torch.bfloat16`` or None."""

    def __init__(self, model: Any, autocast: Any = None):
        import torch

        self.model = model
        self.device = torch.device(model.device)
        self.autocast = autocast
        self.pin = self.device.type == "cuda"

    def describe(self) -> dict[str, Any]:
        import torch

        weights = str(next(self.model.parameters()).dtype).replace("torch.", "")
        precision = f"{str(self.autocast).replace('torch.', '')}-autocast" if self.autocast else weights
        return {"backend": "torch", "precision": precision, "threads": torch.get_num_threads()}

    def prepare(self, texts: Sequence[str], prompt: str) -> dict[str, Any]:
        features = self.model.preprocess(list(texts), prompt=prompt or None)
        if self.pin:
            features = {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in features.items()}
        return features

    def context(self):
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.autocast))
        return stack

    def __call__(self, features: dict[str, Any]):
        features = {k: v.to(self.device, non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()}
        return self.model(features)["sentence_embedding"].float()


def sentence_embedding_module(model: Any) -> Any:
    """A torch module view of a SentenceTransformer: (input_ids, attention_mask) -> pooled embedding."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    return SentenceEmbedding(model).eval()


def openvino_cache_record(model: Any, model_sha256: str) -> dict[str, Any]:
    """What a converted model is made from: the model's files, its modules and the converter's versions."""
    from knowledge_map.provenance import package_versions

    versions = package_versions(("openvino", "torch", "transformers", "sentence-transformers"))
    modules = [type(module).__name__ for module in model]
    return {"model_sha256": model_sha256, "modules": modules, "versions": versions}


def openvino_cache_key(model: Any, model_sha256: str) -> str:
    """Hex key of a converted model: the digest of :func:`openvino_cache_record`."""
    text = json.dumps(openvino_cache_record(model, model_sha256), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def convert_to_openvino(model: Any) -> Any:
    """An OpenVINO model of the whole SentenceTransformer (transformer + pooling), with dynamic shapes."""
    import openvino as ov
    import torch

    encoded = model.preprocess(list(CHECK_SENTENCES))
    example = (encoded["input_ids"], encoded["attention_mask"])
    # Tracing warns about shape-dependent Python branches; the converted model
    # is checked against PyTorch on texts of several lengths before use.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = ov.convert_model(
            sentence_embedding_module(model),
            example_input=example,
            input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)],
        )
    return converted


def load_openvino_model(model: Any, model_sha256: str, cache_dir: str | None) -> Any:
    """The converted model, read from ``cache_dir`` (converting and caching it atomically first if absent).

    The model is always read back from the saved IR, never used straight
    from the converter: the two compile to different kernels, and the shard
    that converts must give the same bytes as the shards that read.  An
    entry whose ``identity.json`` is not this model's record is refused.
    Without ``model_sha256`` (files unknown) nothing is cached.
    """
    import openvino as ov

    if not cache_dir or not model_sha256:
        return convert_to_openvino(model)
    record = openvino_cache_record(model, model_sha256)
    folder = os.path.join(cache_dir, openvino_cache_key(model, model_sha256))
    xml = os.path.join(folder, "model.xml")
    if os.path.exists(xml):
        try:
            with open(os.path.join(folder, "identity.json"), encoding="utf-8") as handle:
                stored = json.load(handle)
        except (OSError, ValueError):
            stored = None
        if stored != record:
            raise KnowledgeMapError(
                f"{folder}: this OpenVINO cache entry was not made from this model's files "
                f"(model_sha256 {model_sha256[:12]}…); delete the folder and re-run"
            )
    else:
        converted = convert_to_openvino(model)
        os.makedirs(cache_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-")
        try:
            # Full-precision weights: fp16 compression would change the embeddings.
            ov.save_model(converted, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
            with open(os.path.join(tmp, "identity.json"), "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
            os.replace(tmp, folder)
            log.info("cached the OpenVINO model in %s", folder)
        except OSError:
            # Another shard cached it first; theirs is the same conversion.
            shutil.rmtree(tmp, ignore_errors=True)
    return ov.Core().read_model(xml)


class OpenVINOEncoder:
    """OpenVINO on the CPU in ``precision`` (float32 or bfloat16), with ``threads`` inference threads."""

    def __init__(
        self, model: Any, precision: str, threads: int, model_sha256: str = "", cache_dir: str | None = None
    ):
        import openvino as ov

        self.model = model
        self.threads = threads
        core = ov.Core()
        converted = load_openvino_model(model, model_sha256, cache_dir)
        self.names = [port.get_any_name() for port in converted.inputs]
        check = self._compile(core, converted, "float32")
        self._check_conversion(check)
        self.compiled = check if precision == "float32" else self._compile(core, converted, precision)
        self.request = self.compiled.create_infer_request()

    def _compile(self, core: Any, converted: Any, precision: str) -> Any:
        hint = {"float32": "f32", "bfloat16": "bf16"}[precision]
        config = {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        return core.compile_model(converted, "CPU", config)

    def _check_conversion(self, compiled: Any) -> None:
        """Refuse a conversion that does not reproduce PyTorch float32 (cosine < CONVERSION_MIN_COSINE)."""
        import torch

        features = self.model.preprocess(list(CHECK_SENTENCES))
        with torch.inference_mode():
            reference = self.model(features)["sentence_embedding"].float().numpy()
        request = compiled.create_infer_request()
        converted = np.array(request.infer({n: features[n].numpy() for n in self.names})[0])
        cosine = (reference * converted).sum(1) / (
            np.linalg.norm(reference, axis=1) * np.linalg.norm(converted, axis=1)
        )
        if not cosine.min() >= CONVERSION_MIN_COSINE:
            raise KnowledgeMapError(
                f"the OpenVINO conversion of this model disagrees with PyTorch (min cosine {cosine.min():.5f}); "
                "set model.backend: torch"
            )

    def describe(self) -> dict[str, Any]:
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        precision = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}.get(hint, hint)
        return {"backend": "openvino", "precision": precision, "threads": self.threads}

    def prepare(self, texts: Sequence[str], prompt: str) -> dict[str, np.ndarray]:
        features = self.model.preprocess(list(texts), prompt=prompt or None)
        return {name: features[name].numpy().astype(np.int64, copy=False) for name in self.names}

    def context(self):
        return contextlib.nullcontext()

    def __call__(self, features: dict[str, np.ndarray]):
        import torch

        # The request reuses its output buffer: copy before the next batch.
        return torch.from_numpy(np.array(self.request.infer(features)[0], dtype=np.float32))


def make_encoder(
    model: Any,
    device: str,
    backend: str,
    cpu_precision: str,
    threads: int | None = None,
    model_sha256: str = "",
    cache_dir: str | None = None,
):
    """The encoder for resolved settings: OpenVINO, or PyTorch (autocast bfloat16 on a CPU that asks for it)."""
    import torch

    threads = threads or torch.get_num_threads()
    if backend == "openvino":
        return OpenVINOEncoder(model, cpu_precision, threads, model_sha256, cache_dir)
    autocast = torch.bfloat16 if device == "cpu" and cpu_precision == "bfloat16" else None
    return TorchEncoder(model, autocast)
