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
fixed sentences (with the run's prompt) before use; a job that restarts it
from an engine record (:mod:`knowledge_map.engine_restart`) checks it
against the float32 probe embeddings that check recorded.  Its int8 version (CPUs with VNNI and no native
bf16) is made from it by :mod:`knowledge_map.quantize`, cached the same way.  Each cache entry holds the record it was made
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
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge_map.errors import ConversionError, KnowledgeMapError
from knowledge_map.io import temporary_folder, write_failure

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


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two float matrices."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero or non-finite row gives NaN, which callers fail
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def agreement(candidate: np.ndarray, reference: np.ndarray) -> float:
    """The smallest row cosine between two engines' outputs; 0 when any is not finite.

    A NaN (an overflow in a fused kernel) must fail every check that uses
    this: Python's ``min`` skips NaN and would let it pass.
    """
    similarity = cosines(candidate, reference)
    return float(similarity.min()) if len(similarity) and np.isfinite(similarity).all() else 0.0


def bucket_length(length: int, multiple: int, cap: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``multiple`` (at most ``cap`` when it is above ``length``)."""
    rounded = -(-max(int(length), 1) // multiple) * multiple
    return max(int(length), min(rounded, cap)) if cap is not None else rounded


def pad_features(features: dict[str, Any], length: int, side: str, pad_id: int) -> dict[str, Any]:
    """Tokenised features padded to ``length`` tokens on the tokenizer's padding ``side``.

    ``input_ids`` get the pad token, ``attention_mask`` and every other
    per-token tensor (``token_type_ids``) zeros: exactly what the tokenizer
    itself gives for a longer batch.
    """
    import torch

    out = dict(features)
    for key, value in features.items():
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[1] >= length:
            continue
        fill = pad_id if key == "input_ids" else 0
        pad = torch.full((value.shape[0], length - value.shape[1]), fill, dtype=value.dtype)
        out[key] = torch.cat([pad, value] if side == "left" else [value, pad], dim=1)
    return out


def cuda_attention_backends():
    """PyTorch attention on CUDA without the cuDNN backend: FlashAttention, memory-efficient, math.

    On an H200 (torch 2.11) SDPA picked cuDNN attention, which builds a plan
    for every new shape: the embedded default's first pass over 10,033
    articles took 17.8 s against 4.0 s for the next; without cuDNN the
    first pass took 3.9 s and the steady rate rose from 2,497 to 3,085
    texts/s (docs/gpu.md).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


class TorchEncoder:
    """The model's own PyTorch forward pass on its device; ``autocast`` = e.g. ``torch.bfloat16`` or None.

    With ``length_multiple`` > 1 each batch is padded to a multiple of that
    many tokens (:func:`bucket_length`), so a shard meets a few shapes
    rather than one per batch.
    """

    def __init__(self, model: Any, autocast: Any = None, length_multiple: int = 1):
        import torch

        self.model = model
        self.device = torch.device(model.device)
        self.autocast = autocast
        self.pin = self.device.type == "cuda"
        self.length_multiple = length_multiple
        tokenizer = model.tokenizer
        self.side = getattr(tokenizer, "padding_side", "right")
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    def describe(self) -> dict[str, Any]:
        import torch

        weights = str(next(self.model.parameters()).dtype).replace("torch.", "")
        precision = f"{str(self.autocast).replace('torch.', '')}-autocast" if self.autocast else weights
        return {"backend": "torch", "precision": precision, "threads": torch.get_num_threads()}

    def prepare(self, texts: Sequence[str], prompt: str) -> dict[str, Any]:
        features = self.model.preprocess(list(texts), prompt=prompt or None)
        if self.length_multiple > 1:
            length = bucket_length(features["input_ids"].shape[1], self.length_multiple, self.model.max_seq_length)
            features = pad_features(features, length, self.side, self.pad_id)
        return self._pinned(features)

    def from_arrays(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """Features from padded NumPy arrays (:meth:`knowledge_map.tokens.TokenizedTexts.features`) and any
        other entries ``preprocess`` gives (:class:`knowledge_map.tokens.FastTokenizer`), as the model takes them."""
        import torch

        return self._pinned({key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                             for key, value in arrays.items()})

    def _pinned(self, features: dict[str, Any]) -> dict[str, Any]:
        """``features`` in page-locked memory on CUDA, so the copy to the GPU does not wait for the host."""
        if self.pin:
            features = {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in features.items()}
        return features

    def context(self):
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.autocast))
        if self.device.type == "cuda":
            stack.enter_context(cuda_attention_backends())
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
    return cache_record_key(openvino_cache_record(model, model_sha256))


def cache_record_key(record: dict[str, Any]) -> str:
    """Hex key of a converted model's cache record (:func:`openvino_cache_record`)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


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
        try:
            converted = ov.convert_model(
                sentence_embedding_module(model),
                example_input=example,
                input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)],
            )
        except Exception as error:  # noqa: BLE001 - the converter raises many types; all mean the same here
            raise ConversionError(
                f"OpenVINO cannot convert this model ({type(error).__name__}: {' '.join(str(error).split())[:200]}); "
                "set model.backend: torch"
            ) from error
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
        tmp = temporary_folder(cache_dir)
        try:
            # Full-precision weights: fp16 compression would change the embeddings.
            ov.save_model(converted, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
            with open(os.path.join(tmp, "identity.json"), "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
            os.replace(tmp, folder)
            log.info("cached the OpenVINO model in %s", folder)
        except (OSError, RuntimeError) as error:  # a full disk comes as a bare RuntimeError from OpenVINO
            shutil.rmtree(tmp, ignore_errors=True)
            if not os.path.exists(xml):  # else another shard cached it first; theirs is the same conversion
                raise write_failure(cache_dir, "the OpenVINO model", error) from error
    return ov.Core().read_model(xml)


class OpenVINOEncoder:
    """OpenVINO on the CPU in ``precision`` (float32, bfloat16 or int8), with ``threads`` inference threads.

    int8 needs ``int8`` (an :class:`knowledge_map.quantize.Int8Plan`: corpus
    texts to calibrate and judge on).  ``self.int8`` then records the int8
    model's key, its guard figures and whether it is used; when the guard
    fails the encoder computes in float32 (``describe()`` says so).
    """

    def __init__(
        self, model: Any, precision: str, threads: int, model_sha256: str = "", cache_dir: str | None = None,
        int8: Any = None, prompt: str = "",
    ):
        import openvino as ov

        self.model = model
        self.threads = threads
        core = ov.Core()
        converted = load_openvino_model(model, model_sha256, cache_dir)
        self.float32 = self._compile(core, converted, "float32")
        self.names = [port.get_any_name() for port in converted.inputs]
        self._check_conversion(self.float32, prompt)
        converted_key = openvino_cache_key(model, model_sha256) if model_sha256 else ""
        self._finish(core, converted, precision, converted_key, cache_dir, int8)

    @classmethod
    def restart(cls, model: Any, record: dict[str, Any], precision: str, threads: int, cache_dir: str,
                plan: Any = None, prompt: str = "") -> OpenVINOEncoder | None:
        """The engine in ``precision`` from the converted model an engine record names, without PyTorch.

        ``model`` is the record's tokenizer-only model
        (:mod:`knowledge_map.engine_restart`).  The recorded conversion stands in
        for the check against PyTorch: the float32 engine must reproduce the
        recorded probe embeddings.  None (logged) when the converted model is
        missing or not the recorded one, or the probes differ: the caller
        then builds the engine in full.  What follows (bfloat16, or int8
        quantized and judged, or read from its cache) is the full build's.
        """
        import openvino as ov

        from knowledge_map.tokens import FIXED_PROBES

        self = cls.__new__(cls)
        self.model, self.threads = model, threads
        try:
            folder = os.path.join(cache_dir, cache_record_key(record["converted"]))
            recorded = np.asarray(record["probe_embeddings"], dtype=np.float32)
            with open(os.path.join(folder, "identity.json"), encoding="utf-8") as handle:
                if json.load(handle) != record["converted"]:
                    raise KnowledgeMapError(f"{folder}: not the converted model the engine record names")
            core = ov.Core()
            converted = core.read_model(os.path.join(folder, "model.xml"))
            self.float32 = self._compile(core, converted, "float32")
            self.names = [port.get_any_name() for port in converted.inputs]
            probes = self.probe(FIXED_PROBES, prompt)
        except (OSError, ValueError, TypeError, KeyError, RuntimeError, KnowledgeMapError) as error:
            log.warning("engine record unusable (%s: %s); building the engine in full", type(error).__name__,
                        " ".join(str(error).split())[:200])
            return None
        if probes.shape != recorded.shape or not agreement(probes, recorded) >= CONVERSION_MIN_COSINE:
            log.warning("engine record: the cached engine no longer reproduces its probes; building the engine in full")
            return None
        self._finish(core, converted, precision, cache_record_key(record["converted"]), cache_dir, plan)
        return self

    def _finish(self, core: Any, converted: Any, precision: str, converted_key: str, cache_dir: str | None,
                plan: Any) -> None:
        """The engine in ``precision`` from the checked conversion (``self.float32`` compiled)."""
        self.int8: dict[str, Any] | None = None
        if precision == "int8":
            self.compiled = self._int8(core, converted, self.float32, plan, converted_key, cache_dir)
        else:
            self.compiled = self.float32 if precision == "float32" else self._compile(core, converted, precision)
        self.precision = "int8" if self.int8 and self.int8["used"] else None
        self.request = self.compiled.create_infer_request()

    def probe(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        """Float32 embeddings of ``texts`` by the float32 engine (what the engine record keeps and checks)."""
        return self._embed(self.float32, texts, prompt)

    def _compile(self, core: Any, converted: Any, precision: str) -> Any:
        # An int8 model compiles with the float32 hint: its quantized
        # operations run in int8, the ones NNCF left alone in float32.
        hint = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}[precision]
        config = {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        return core.compile_model(converted, "CPU", config)

    def _int8(self, core: Any, converted: Any, float32: Any, plan: Any, converted_key: str,
              cache_dir: str | None) -> Any:
        """The compiled int8 model if its guard passes, else ``float32`` (with a one-line warning)."""
        from knowledge_map.quantize import (
            guard_figures,
            guard_verdict,
            quantization_key,
            quantization_record,
            quantize,
            quantized_model,
        )

        if plan is None:
            raise KnowledgeMapError("cpu_precision int8 needs corpus texts to calibrate on (an Int8Plan)")
        record = quantization_record(converted_key, plan, self.model.max_seq_length)

        def make():
            log.info("quantizing to int8 on %d corpus texts", len(plan.calibration))
            return quantize(converted, lambda texts: self._features(texts, plan.prompt), plan.calibration)

        def judge(quantized):
            reference = self._embed(float32, plan.guard, plan.prompt)
            candidate = self._embed(self._compile(core, quantized, "int8"), plan.guard, plan.prompt)
            return guard_figures(reference, candidate)

        quantized, figures = quantized_model(record, cache_dir if converted_key else None, make, judge)
        guard = guard_verdict(figures, plan.settings.min_overlap)
        self.int8 = {"model": quantization_key(record), "guard": guard, "used": bool(guard["passed"])}
        if not guard["passed"]:
            log.warning(
                "int8 guard failed: neighbour overlap %.4f < %.4f on %d corpus texts; computing in float32",
                guard["neighbour_overlap"], guard["min_overlap"], guard["texts"],
            )
            return float32
        return self._compile(core, quantized, "int8")

    def _features(self, texts: Sequence[str], prompt: str) -> dict[str, np.ndarray]:
        features = self.model.preprocess(list(texts), prompt=prompt or None)
        return {name: features[name].numpy().astype(np.int64, copy=False) for name in self.names}

    def _embed(self, compiled: Any, texts: Sequence[str], prompt: str, batch_size: int = 16) -> np.ndarray:
        """Float32 embeddings of ``texts`` with ``compiled``, in batches of similar length (little padding)."""
        from knowledge_map.embed import token_lengths

        order = np.argsort(token_lengths(self.model, texts), kind="stable")
        out = np.zeros((len(texts), self.model.get_embedding_dimension()), dtype=np.float32)
        request = compiled.create_infer_request()
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = np.array(request.infer(self._features([texts[i] for i in rows], prompt))[0])
        return out

    def _check_conversion(self, compiled: Any, prompt: str) -> None:
        """Refuse a conversion that does not reproduce PyTorch float32 (cosine < CONVERSION_MIN_COSINE).

        Checked with the run's prompt: a model whose pooling leaves the prompt
        out (``prompt_length``, which the converted graph does not take) is
        refused rather than embedded differently.
        """
        import torch

        features = self.model.preprocess(list(CHECK_SENTENCES), prompt=prompt or None)
        with torch.inference_mode():
            reference = self.model(features)["sentence_embedding"].float().numpy()
        request = compiled.create_infer_request()
        converted = np.array(request.infer({n: features[n].numpy() for n in self.names})[0])
        cosine = agreement(reference, converted)
        if not cosine >= CONVERSION_MIN_COSINE:
            raise ConversionError(
                f"the OpenVINO conversion of this model disagrees with PyTorch (min cosine {cosine:.5f}); "
                "set model.backend: torch"
            )

    def describe(self) -> dict[str, Any]:
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        precision = self.precision or {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}.get(hint, hint)
        return {"backend": "openvino", "precision": precision, "threads": self.threads}

    def prepare(self, texts: Sequence[str], prompt: str) -> dict[str, np.ndarray]:
        return self._features(texts, prompt)

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's inputs from padded arrays (:meth:`knowledge_map.tokens.TokenizedTexts.features`)."""
        return {name: arrays[name] for name in self.names}

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
    int8: Any = None,
    compile: bool = False,
    prompt: str = "",
):
    """The encoder for resolved settings: OpenVINO, or PyTorch (autocast bfloat16 on a CPU that asks for it).

    ``int8`` is the :class:`knowledge_map.quantize.Int8Plan` int8 precision
    calibrates and is judged on; int8 runs on OpenVINO only.  ``compile``
    gives PyTorch with compiled blocks (:class:`knowledge_map.gpu.CompiledEncoder`).
    ``prompt`` is the run's: OpenVINO's conversion is checked with it.
    """
    import torch

    threads = threads or torch.get_num_threads()
    if backend == "openvino":
        return OpenVINOEncoder(model, cpu_precision, threads, model_sha256, cache_dir, int8, prompt)
    if cpu_precision == "int8":
        raise KnowledgeMapError("model.cpu_precision int8 runs on the OpenVINO engine only; set model.backend: openvino")
    if compile:
        from knowledge_map.gpu import CompiledEncoder

        return CompiledEncoder(model)
    autocast = torch.bfloat16 if device == "cpu" and cpu_precision == "bfloat16" else None
    return TorchEncoder(model, autocast)
