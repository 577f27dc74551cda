"""Where a CUDA job's time goes besides the GPU's kernels: tokenising, the loop; and attention alone.

In one process, on long texts (vital articles joined, cut at 512 tokens),
with the workflow's compiled encoder (eager on a CPU dry run):

- ``embed_texts_s``: ``embed_texts`` as a shard job runs it;
- ``forward_only_s``: the same planned batches with their features made
  beforehand, so only the forward passes are timed; the gap to the first is
  what the host costs the GPU;
- the tokenising costs on this host: ``token_lengths`` of all texts, and
  one batch through ``SentenceTransformer.preprocess`` and through the
  ``tokenizers`` library alone;
- the synchronising calls in two forward passes (``torch.cuda.set_sync_debug_mode``);
- one layer's attention of one batch (16 query and 8 key/value heads of
  128, causal) through each PyTorch attention backend.

The last line of output is one JSON object (also written to ``$OUT/decompose.json``).

    python benchmarks/gpu_decompose.py --model /tmp/random-qwen3          # 2,048 texts, batch 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder (benchmarks/embed.py --model random-qwen3 builds one)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def timed(func, device: str, repeats: int = 1):
    """Median seconds of ``func()`` over ``repeats`` (the GPU synchronised around each), and its last result."""
    import torch

    times, out = [], None
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = func()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)), 4), out


def attention_backends(batch: int) -> dict:
    """Milliseconds and causal TFLOP/s of one Qwen3-0.6B layer's attention over ``batch`` texts of 512 tokens."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(batch, 16, 512, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, 8, 512, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    k2, v2 = k.repeat_interleave(2, 1), v.repeat_interleave(2, 1)
    mask = torch.ones(batch, 1, 512, 512, device="cuda", dtype=torch.bool).tril()
    mask[: batch // 2, :, :, :10] = False  # half the texts left-padded by 10 tokens
    flop = 4 * batch * 16 * 512 * 512 * 128 / 2
    cases = {
        "flash_causal_gqa": (SDPBackend.FLASH_ATTENTION, dict(query=q, key=k, value=v, is_causal=True, enable_gqa=True)),
        "efficient_mask": (SDPBackend.EFFICIENT_ATTENTION, dict(query=q, key=k2, value=v2, attn_mask=mask)),
        "efficient_causal": (SDPBackend.EFFICIENT_ATTENTION, dict(query=q, key=k2, value=v2, is_causal=True)),
        "cudnn_causal": (SDPBackend.CUDNN_ATTENTION, dict(query=q, key=k2, value=v2, is_causal=True)),
        "cudnn_causal_gqa": (SDPBackend.CUDNN_ATTENTION, dict(query=q, key=k, value=v, is_causal=True, enable_gqa=True)),
        "cudnn_mask": (SDPBackend.CUDNN_ATTENTION, dict(query=q, key=k2, value=v2, attn_mask=mask)),
    }
    out = {}
    for name, (backend, kwargs) in cases.items():
        try:
            with sdpa_kernel([backend]), torch.inference_mode():
                F.scaled_dot_product_attention(**kwargs)
                seconds, _ = timed(lambda kw=kwargs: [F.scaled_dot_product_attention(**kw) for _ in range(20)], "cuda")
            out[name] = {"ms": round(seconds / 20 * 1000, 3), "tflops_causal": round(flop / (seconds / 20) / 1e12, 1)}
        except RuntimeError as error:
            out[name] = " ".join(str(error).split())[:160]
    return out


def sync_sites(encoder, features: list) -> dict:
    """How many synchronising CUDA calls two forward passes make, and where."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with encoder.context():
                encoder(features[0])
                encoder(features[-1])
        finally:
            torch.cuda.set_sync_debug_mode(0)
    sites = {f"{os.path.basename(w.filename)}:{w.lineno}" for w in caught}
    return {"syncs_two_forwards": len(caught), "sync_sites": sorted(sites)[:10]}


def main(argv=None) -> dict:
    args = parse_args(argv)
    from embed import long_texts
    from transformers import AutoTokenizer

    from knowledge_map.backends import TorchEncoder
    from knowledge_map.embed import embed_texts, plan_batches, token_lengths
    from knowledge_map.models import load_model, resolve_model_path

    device, size = args.device, args.batch_size
    model = load_model(args.model, device, "bfloat16" if device == "cuda" else "float32", 512)
    texts = long_texts(AutoTokenizer.from_pretrained(resolve_model_path(args.model)), args.texts, 512)
    result: dict = {"texts": len(texts), "batch_size": size, "cpu_count": os.cpu_count()}
    seconds, lengths = timed(lambda: token_lengths(model, texts), device)
    rust = model.tokenizer.backend_tokenizer
    result["tokenising"] = {
        "token_lengths_all_s": seconds,
        "under_512": int((lengths < 512).sum()),
        "preprocess_per_batch_s": timed(lambda: [model.preprocess(texts[i * size:(i + 1) * size]) for i in range(8)],
                                        device)[0] / 8,
        "tokenizers_per_batch_s": timed(lambda: [rust.encode_batch(texts[i * size:(i + 1) * size]) for i in range(8)],
                                        device)[0] / 8,
    }
    if device == "cuda":
        from knowledge_map.gpu import CompiledEncoder

        result["setup_s"], encoder = timed(lambda: CompiledEncoder(model), device)
    else:
        encoder = TorchEncoder(model, length_multiple=64)
    embed_texts(model, texts[: 2 * size], size, encoder=encoder)  # warm-up
    result["embed_texts_s"] = timed(lambda: embed_texts(model, texts, size, encoder=encoder), device, 2)[0]
    batches = plan_batches(lengths, size, size * 512, 64, 512)
    seconds, features = timed(lambda: [encoder.prepare([texts[i] for i in b], "") for b in batches], device)
    result["prepare_all_s"] = seconds

    def forward():
        with encoder.context():
            return [encoder(f) for f in features]

    result["forward_only_s"] = timed(forward, device, 2)[0]
    for key in ("embed_texts_s", "forward_only_s"):
        result[key.replace("_s", "_texts_per_s")] = round(len(texts) / result[key], 1)
    if device == "cuda":
        result.update(sync_sites(encoder, features))
        result["attention_one_layer"] = attention_backends(size)
    print(json.dumps(result))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "decompose.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
