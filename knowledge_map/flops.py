"""FLOP counts of an encoder forward pass, and the GPUs' dense half-precision peaks.

FLOP of one encoder forward pass over a text of ``s`` tokens (no padding):

    F(s) = 2 * P * s + 4 * L * d * s**2

where ``P`` is the number of parameters in the layers (embedding tables
excluded: a lookup is not a multiply-add), ``L`` the number of layers and
``d`` the attention width, heads x head size (the hidden size for BERT-like
models, 2,048 against a hidden size of 1,024 for Qwen3-0.6B); the second
term is attention (Q K^T and A V, each ``2 s^2 d`` per layer).  Counting unpadded tokens measures useful work, so
padding waste shows up as a lower fraction of peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Dense bfloat16/float16 tensor-core peaks (FLOP/s) by CUDA device name fragment, from the vendors' datasheets.
GPU_HALF_PEAKS = (
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),
    ("A100", 312.0e12),
    ("L40S", 362.0e12),
    ("L40", 181.0e12),  # before "L4": fragments are matched in order
    ("L4", 121.0e12),
    ("A10", 125.0e12),
)


def encoder_flops(lengths: Sequence[int], layer_params: int, n_layers: int, hidden: int) -> float:
    """Sum of F(s) over ``lengths`` (formula in the module docstring)."""
    return float(sum(2.0 * layer_params * s + 4.0 * n_layers * hidden * s * s for s in lengths))


def attention_width(config: Any) -> int:
    """Heads x head size: what Q K^T and A V are computed over (``head_dim`` when the config sets it)."""
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
    return heads * int(head_dim)


def model_shape(model: Any) -> tuple[int, int, int]:
    """``(P, L, d)`` of a SentenceTransformer's transformer: non-embedding parameters, layers, attention width."""
    inner = model[0].auto_model
    config = inner.config
    params = sum(p.numel() for name, p in inner.named_parameters() if "embed" not in name)
    return int(params), int(config.num_hidden_layers), attention_width(config)


def gpu_peak_flops(name: str) -> float | None:
    """Dense half-precision peak of a CUDA device by name, or None for a device not in GPU_HALF_PEAKS."""
    for fragment, peak in GPU_HALF_PEAKS:
        if fragment in name:
            return peak
    return None
