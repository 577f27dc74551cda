"""Where a CUDA embedding batch spends its time: kernel time by kind, and the GPU's idle share.

Runs the workflow's encoder (eager or compiled blocks) on long texts,
warms it up, times steady passes, then profiles a few batches with
``torch.profiler`` and sums kernel time by kind (matrix products,
attention, Triton-fused element-wise, copies, other).  ``gpu_busy_share``
is kernel time over wall time: well under 1 means the GPU waits for the
host (launches, tokenising), which CUDA graphs would cure; near 1 means
the kernels themselves are the cost.

Variants, each in its own process (they patch global state):

- ``--liger``: Liger-Kernel's fused RMSNorm, rotary and SwiGLU for Qwen3
  (``apply_liger_kernel_to_qwen3``), patched in before the model loads;
- ``--graph``: the whole forward pass of one fixed-shape batch captured in a
  CUDA graph and replayed (an upper bound on what removing launch overhead
  gains at that shape).

The last line of output is one JSON object (also written to ``--out``).

    python benchmarks/gpu_profile.py --model random-qwen3 --encoder compiled --out /tmp/p.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = (
    ("attention", ("flash", "fmha", "attention", "sdpa")),
    ("matmul", ("gemm", "cutlass", "xmma", "nvjet", "cublas", "matmul", "splitk")),
    ("triton", ("triton",)),
    ("copy", ("copy", "memcpy", "memset", "cat", "fill", "index")),
)


def kernel_kind(name: str) -> str:
    """The kind of a CUDA kernel, from its name (first matching entry of :data:`KINDS`)."""
    lower = name.lower()
    for kind, fragments in KINDS:
        if any(fragment in lower for fragment in fragments):
            return kind
    return "other"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="random-qwen3")
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--encoder", choices=("eager", "compiled"), default="compiled")
    parser.add_argument("--liger", action="store_true")
    parser.add_argument("--graph", action="store_true")
    parser.add_argument("--profile-batches", type=int, default=4)
    parser.add_argument("--random-shape", default=None, help="random-qwen3: JSON config overrides (dry runs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def profile_kernels(run, device: str) -> dict:
    """Kernel time of ``run()`` by kind and the top kernels, with wall time and the GPU's busy share."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    by_name: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if device == "cuda" and event.device_type == torch.autograd.DeviceType.CUDA:
            by_name[event.name] += event.device_time / 1e6
    by_kind: dict[str, float] = defaultdict(float)
    for name, seconds in by_name.items():
        by_kind[kernel_kind(name)] += seconds
    busy = sum(by_name.values())
    top = sorted(by_name.items(), key=lambda item: -item[1])[:25]
    return {
        "wall_s": round(wall, 4),
        "kernel_s": round(busy, 4),
        "gpu_busy_share": round(busy / wall, 3) if wall else None,
        "by_kind_share": {k: round(v / busy, 3) for k, v in sorted(by_kind.items(), key=lambda i: -i[1])} if busy else {},
        "top_kernels": [{"name": n[:140], "s": round(s, 4), "share": round(s / busy, 3)} for n, s in top] if busy else [],
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    import numpy as np
    import torch
    from embed import long_texts, resolve_model_name

    if args.liger:
        from liger_kernel.transformers import apply_liger_kernel_to_qwen3

        apply_liger_kernel_to_qwen3(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)
    from transformers import AutoTokenizer

    from knowledge_map.backends import TorchEncoder
    from knowledge_map.embed import embed_texts, token_lengths
    from knowledge_map.flops import encoder_flops, gpu_peak_flops, model_shape
    from knowledge_map.models import load_model, resolve_dtype, resolve_model_path

    device = args.device
    name = resolve_model_name(args.model, args.random_shape)
    dtype = resolve_dtype(args.model, "auto", device)
    model = load_model(name, device, dtype, args.max_seq_length)
    texts = long_texts(AutoTokenizer.from_pretrained(resolve_model_path(name)), args.texts, args.max_seq_length)
    lengths = token_lengths(model, texts)
    flops = encoder_flops(lengths, *model_shape(model))
    peak = gpu_peak_flops(torch.cuda.get_device_name()) if device == "cuda" else None

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    started = time.perf_counter()
    if args.encoder == "compiled":
        from knowledge_map.gpu import CompiledEncoder

        encoder = CompiledEncoder(model)
    else:
        encoder = TorchEncoder(model, length_multiple=64)
    sync()
    setup = time.perf_counter() - started
    result: dict = {"benchmark": "gpu_profile", "device_name": torch.cuda.get_device_name() if device == "cuda"
                    else device, "encoder": args.encoder, "liger": args.liger, "graph": args.graph,
                    "texts": len(texts), "batch_size": args.batch_size, "setup_s": round(setup, 2),
                    "versions": {"torch": torch.__version__}}
    if hasattr(encoder, "record"):
        result["compiled"] = encoder.record()
    embed_texts(model, texts[: args.batch_size * 2], args.batch_size, encoder=encoder)  # warm-up
    sync()
    times = []
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        out = embed_texts(model, texts, args.batch_size, encoder=encoder)
        sync()
        times.append(time.perf_counter() - t0)
    steady = float(np.median(times))
    result["steady_s"] = [round(t, 3) for t in times]
    result["texts_per_s"] = round(len(texts) / steady, 1)
    result["share_of_peak"] = round(flops / steady / peak, 4) if peak else None
    part = texts[: args.batch_size * args.profile_batches]
    result["profile"] = profile_kernels(lambda: embed_texts(model, part, args.batch_size, encoder=encoder), device)

    if args.graph:
        try:
            result.update(measure_graph(model, encoder, texts, lengths, args, peak))
        except Exception as error:  # noqa: BLE001 - report why capture failed, keep the figures above
            result["graph_error"] = " ".join(f"{type(error).__name__}: {error}".split())[:400]
    del out
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def measure_graph(model, encoder, texts, lengths, args, peak) -> dict:
    """Replay rate of the whole forward pass of one fixed-shape batch captured in a CUDA graph."""
    import torch

    from knowledge_map.backends import agreement
    from knowledge_map.flops import encoder_flops, model_shape

    device = args.device
    result: dict = {}

    def sync():
        torch.cuda.synchronize()

    # One fixed shape (batch_size x max_seq_length): capture the whole forward once, replay it.
    features = encoder.prepare(texts[: args.batch_size], "")
    static = {k: v.to(device) for k, v in features.items() if hasattr(v, "to")}
    with encoder.context():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                reference = model(dict(static))["sentence_embedding"].float().clone()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = model(dict(static))["sentence_embedding"]
        graph.replay()
        sync()
        result["graph_cosine"] = round(agreement(captured.float().cpu().numpy(), reference.cpu().numpy()), 6)
        batches = len(texts) // args.batch_size
        batch_flops = encoder_flops(lengths[: args.batch_size], *model_shape(model))
        sync()
        t0 = time.perf_counter()
        for _ in range(batches):
            static["input_ids"].copy_(features["input_ids"].to(device, non_blocking=True))
            graph.replay()
        sync()
        seconds = time.perf_counter() - t0
        result["graph_texts_per_s"] = round(batches * args.batch_size / seconds, 1)
        result["graph_share_of_peak"] = round(batch_flops * batches / seconds / peak, 4) if peak else None
        result["graph_profile"] = profile_kernels(lambda: [graph.replay() for _ in range(4)], device)
    return result


if __name__ == "__main__":
    main()
