"""Embedding throughput: the naive baseline and the workflow's path, on the same texts, in one run.

Naive: ``model.encode(texts, batch_size=32)`` in float32 PyTorch, what the
seed did.  Workflow: :func:`knowledge_map.embed.embed_texts` with the
engine the workflow resolves for this machine (``model.backend: auto``,
``model.cpu_precision: auto`` unless overridden).  Runs alternate
(naive, workflow, naive, ...) so load drifting during the run hits both
sides alike; figures are medians.  The engine's one-off set-up (OpenVINO
conversion and compilation) is reported separately, not in the timings.

The last line of output is one JSON object.  Runs unchanged on CUDA.

    python benchmarks/embed.py --quick          # ~1 minute on 2 cores
    python benchmarks/embed.py                  # 2,000 texts x 3 repeats
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 texts, 3 repeats (~1 minute on 2 CPU cores)")
    parser.add_argument("--texts", type=int, default=2000, help="vital articles to embed (random, seed 0)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64, help="workflow path: model.batch_size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--cpu-precision", default="auto")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cpu-flops-per-cycle", type=float, default=32.0,
                        help="float32 FLOP per cycle per core for the CPU peak (doubled for native bfloat16)")
    parser.add_argument("--skip-naive", action="store_true", help="only the workflow path (large models on GPU)")
    args = parser.parse_args(argv)
    if args.quick:
        args.texts = min(args.texts, 300)
    return args


def load_texts(n: int, seed: int = 0) -> list[str]:
    from knowledge_map.corpus import document_text, load_vital_articles

    records = load_vital_articles()
    rows = np.sort(np.random.default_rng(seed).choice(len(records), size=min(n, len(records)), replace=False))
    return [document_text(records[r]["title"], records[r]["text"]) for r in rows]


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from knowledge_map.backends import make_encoder
    from knowledge_map.devtools.perf import (
        cpu_clock_ghz,
        cpu_peak_flops,
        encoder_flops,
        gpu_peak_flops,
        median,
        model_shape,
        timed,
    )
    from knowledge_map.embed import embed_texts, token_lengths
    from knowledge_map.identity import model_sha256
    from knowledge_map.models import (
        cpu_flags,
        cpu_has_native_bf16,
        load_model,
        resolve_backend,
        resolve_cpu_precision,
        resolve_device,
        resolve_dtype,
        resolve_prompt,
    )
    from knowledge_map.quantize import Int8Settings, plan_from_texts

    torch.set_num_threads(args.threads)
    texts = load_texts(args.texts)
    device = resolve_device(args.device)
    prompt = resolve_prompt(args.model, None)
    backend = resolve_backend(args.backend, device)
    precision = resolve_cpu_precision(args.cpu_precision, backend)
    dtype = resolve_dtype(args.model, "auto", device)

    reference = load_model(args.model, device, "float32", args.max_seq_length)
    model = reference if dtype == "float32" else load_model(args.model, device, dtype, args.max_seq_length)
    plan = None
    if precision == "int8":
        # Calibrated and judged on the corpus the texts come from, as the workflow does.
        plan = plan_from_texts(load_texts(10**9), Int8Settings(), prompt)
    setup, encoder = timed(lambda: make_encoder(
        model, device, backend, precision, args.threads, model_sha256(args.model),
        cache_dir=os.path.join("results", "cache", "openvino"), int8=plan,
    ))
    engine = encoder.describe()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def naive():
        out = reference.encode(texts, batch_size=32, prompt=prompt or None, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        sync()
        return out

    def fast():
        out = embed_texts(model, texts, args.batch_size, prompt, encoder=encoder)
        sync()
        return out

    # Warm-up on a few texts: first-call costs (kernel selection, numba, caches) are not throughput.
    reference.encode(texts[:8], batch_size=8, show_progress_bar=False)
    embed_texts(model, texts[:8], 8, prompt, encoder=encoder)
    naive_times, fast_times = [], []
    naive_out = fast_out = None
    for _ in range(args.repeats):
        if not args.skip_naive:
            seconds, naive_out = timed(naive)
            naive_times.append(seconds)
        seconds, fast_out = timed(fast)
        fast_times.append(seconds)

    lengths = token_lengths(model, [prompt + t for t in texts])
    flops = encoder_flops(lengths, *model_shape(model))
    fast_s = median(fast_times)
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak, peak_note = gpu_peak_flops(name), "dense bf16/fp16 tensor-core datasheet peak"
    else:
        name = platform.processor() or platform.machine()
        ghz = cpu_clock_ghz() or 0.0
        bf16 = engine["precision"].startswith("bfloat16") and cpu_has_native_bf16()
        per_cycle = args.cpu_flops_per_cycle * (2 if bf16 else 1)
        peak = cpu_peak_flops(os.cpu_count(), ghz, per_cycle)
        peak_note = f"{os.cpu_count()} cores x {ghz:.2f} GHz x {per_cycle:g} FLOP/cycle (assumed)"
    result = {
        "benchmark": "embed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "device_name": name,
        "model": args.model,
        "texts": len(texts),
        "tokens": int(lengths.sum()),
        "repeats": args.repeats,
        "threads": args.threads,
        **engine,
        # The instructions that decide which precision is fast; ONEDNN_MAX_CPU_ISA (if set) caps what is used.
        "cpu_flags": sorted(cpu_flags() & {"avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"}),
        "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "int8_guard": getattr(encoder, "int8", None) and encoder.int8["guard"],
        "engine_setup_seconds": round(setup, 2),
        "fast_seconds": [round(t, 3) for t in fast_times],
        "texts_per_s": round(len(texts) / fast_s, 2),
        "tokens_per_s": round(float(lengths.sum()) / fast_s, 1),
        "flop_per_s": float(f"{flops / fast_s:.4g}"),
        "peak_flop_per_s": peak,
        "peak_note": peak_note,
        "fraction_of_peak": round(flops / fast_s / peak, 4) if peak else None,
    }
    if naive_times:
        naive_s = median(naive_times)
        cosine = (naive_out * fast_out).sum(axis=1)
        result.update({
            "naive_seconds": [round(t, 3) for t in naive_times],
            "naive_texts_per_s": round(len(texts) / naive_s, 2),
            "min_cosine_vs_naive": round(float(cosine.min()), 6),
            "speedup_vs_naive": round(naive_s / fast_s, 3),
        })
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
