"""Embedding throughput: the naive baseline and the workflow's path, on the same texts, in one run.

Naive: ``model.encode(texts, batch_size=32)`` in float32 PyTorch, what the
seed did.  Workflow: :func:`knowledge_map.embed.embed_texts` with the
engine the workflow resolves for this machine (``model.backend: auto``,
``model.cpu_precision: auto`` unless overridden).  Runs alternate
(naive, workflow, naive, ...) so load drifting during the run hits both
sides alike; figures are medians.  The engine's one-off set-up (OpenVINO
conversion and compilation) is reported separately, not in the timings.

The last line of output is one JSON object.

On CUDA it measures what a GPU job pays (:func:`measure_cuda`): the naive
path, a careful user's (``encode`` in the GPU dtype, batch 128), the
workflow's eager path and the workflow's path as resolved (``--compile
auto`` compiles the blocks when the job's work repays it,
:mod:`knowledge_map.gpu`), the latter timed as a job: set-up (compiling
included) plus the first pass, then steady passes; with the share of the
GPU's dense bf16 peak and the projected time of 250,000 texts.

    python benchmarks/embed.py --quick          # ~1 minute on 2 cores
    python benchmarks/embed.py                  # 2,000 texts x 3 repeats
    python benchmarks/embed.py --model random-qwen3 --long --max-seq-length 512 --texts 20000   # CUDA

``--model random-qwen3`` builds a model of Qwen3-Embedding-0.6B's exact shape
with random weights (:mod:`knowledge_map.devtools.random_model`: no hub is
reachable here; speed does not depend on the weights' values).  ``--long``
joins vital articles into texts of at least ``--max-seq-length`` tokens.
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
    parser.add_argument("--long", action="store_true", help="texts of at least --max-seq-length tokens (joined articles)")
    parser.add_argument("--min-chars", type=int, default=None,
                        help="texts of at least this many characters (joined articles: whole-article lengths)")
    parser.add_argument("--paths", default="naive,careful,eager,workflow",
                        help="CUDA: which paths to time (naive, careful, eager, workflow)")
    parser.add_argument("--baseline-texts", type=int, default=1024, help="CUDA: texts for the naive and careful paths")
    parser.add_argument("--eager-texts", type=int, default=None, help="CUDA: texts for the eager path (default: all)")
    parser.add_argument("--compile-mode", default=None, help="CUDA workflow path: torch.compile mode (e.g. reduce-overhead)")
    parser.add_argument("--careful-batch", type=int, default=128, help="CUDA: the careful user's encode batch size")
    parser.add_argument("--compile", default="auto", help="CUDA workflow path: model.compile (auto, true, false)")
    parser.add_argument("--length-multiple", type=int, default=None,
                        help="CUDA eager path: pad lengths to this multiple (default: none)")
    parser.add_argument("--sdpa", default=None,
                        help="CUDA: restrict PyTorch attention to these SDPA backends, e.g. flash,efficient,math")
    parser.add_argument("--random-shape", default=None, help="random-qwen3: JSON config overrides (dry runs)")
    parser.add_argument("--cuda-steps-on-cpu", action="store_true",
                        help="run the CUDA measurement's steps on the CPU (a dry run for tests; figures mean nothing)")
    parser.add_argument("--out", default=None, help="also write the JSON object to this file")
    args = parser.parse_args(argv)
    if args.compile in ("true", "false"):
        args.compile = args.compile == "true"
    if args.quick:
        args.texts = min(args.texts, 300)
    return args


def load_texts(n: int, seed: int = 0) -> list[str]:
    from knowledge_map.corpus import document_text, load_vital_articles

    records = load_vital_articles()
    rows = np.sort(np.random.default_rng(seed).choice(len(records), size=min(n, len(records)), replace=False))
    return [document_text(records[r]["title"], records[r]["text"]) for r in rows]


def joined_articles(n: int, size, minimum: int, seed: int = 0) -> list[str]:
    """``n`` texts of at least ``minimum`` by ``size`` (one value per vital article, counted with one more for each
    join), each consecutive vital articles (seeded order) joined."""
    from knowledge_map.corpus import document_text, load_vital_articles

    articles = [document_text(r["title"], r["text"]) for r in load_vital_articles()]
    sizes = size(articles)
    order = np.random.default_rng(seed).permutation(len(articles))
    texts, position = [], 0
    while len(texts) < n:
        parts, total = [], 0
        while total < minimum:
            index = order[position % len(order)]
            parts.append(articles[index])
            total += sizes[index] + 1
            position += 1
        texts.append(" ".join(parts))
    return texts


def long_texts(tokenizer, n: int, min_tokens: int, seed: int = 0) -> list[str]:
    """``n`` texts of at least ``min_tokens`` tokens (``--long``)."""
    return joined_articles(
        n, lambda articles: [len(ids) for ids in tokenizer(articles, add_special_tokens=False)["input_ids"]],
        min_tokens, seed)


def article_length_texts(n: int, min_chars: int, seed: int = 0) -> list[str]:
    """``n`` texts of at least ``min_chars`` characters (``--min-chars``): the length of whole Wikipedia articles
    (tens of thousands of characters), where the corpus holds summaries."""
    return joined_articles(n, lambda articles: [len(text) for text in articles], min_chars, seed)


def resolve_model_name(name: str, shape: str | None = None) -> str:
    """``random-qwen3`` -> a freshly built random-weight Qwen3-0.6B-shaped model folder; else ``name``.

    ``shape``: JSON config overrides (a miniature for dry runs).
    """
    if name != "random-qwen3":
        return name
    import tempfile

    import torch

    from knowledge_map.devtools.random_model import build_random_qwen3

    device = "cuda" if torch.cuda.is_available() else "cpu"
    overrides = json.loads(shape) if shape else {}
    return build_random_qwen3(tempfile.mkdtemp(prefix="random-qwen3-"), device=device, **overrides)


def measure_cuda(args, texts: list[str], prompt: str, model_name: str, device: str = "cuda") -> dict:
    """The CUDA paths side by side (module docstring), on the same texts, in one process.

    ``device`` "cpu" runs the same steps on the CPU (a dry run of this
    script for tests; its figures mean nothing).
    """
    import contextlib
    import time

    import torch

    from knowledge_map.backends import TorchEncoder, cosines, make_encoder
    from knowledge_map.embed import embed_texts, token_lengths
    from knowledge_map.flops import encoder_flops, gpu_peak_flops, model_shape
    from knowledge_map.gpu import resolve_compile
    from knowledge_map.models import load_model, resolve_dtype

    paths = set(args.paths.split(","))
    dtype = resolve_dtype(args.model, "auto", device)
    name = torch.cuda.get_device_name() if device == "cuda" else device
    peak = gpu_peak_flops(name)
    model = load_model(model_name, device, dtype, args.max_seq_length)
    shape = model_shape(model)
    lengths = token_lengths(model, [prompt + t for t in texts])
    flops = encoder_flops(lengths, *shape)
    baseline = texts[: args.baseline_texts]
    baseline_flops = encoder_flops(lengths[: len(baseline)], *shape)
    result: dict = {"device_name": name, "dtype": dtype, "peak_flop_per_s": peak, "texts": len(texts),
                    "tokens": int(lengths.sum()), "mean_tokens": round(float(lengths.mean()), 1),
                    "baseline_texts": len(baseline), "model_shape": list(shape)}
    sdpa = contextlib.nullcontext()
    if args.sdpa:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        sdpa = sdpa_kernel([getattr(SDPBackend, b.strip().upper()) for b in args.sdpa.split(",")])

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def sync_timed(func):
        sync()
        started = time.perf_counter()
        out = func()
        sync()
        return time.perf_counter() - started, out

    def share(seconds, work):
        return round(work / seconds / peak, 4) if peak else None

    outputs = {}
    with sdpa:
        if "workflow" in paths:
            # Timed as a job, first: set-up (compiling) and the first pass pay every cold cost once.
            job_model = load_model(model_name, device, dtype, args.max_seq_length)
            if device == "cuda":
                compiling = resolve_compile(args.compile, device, "torch", flops, name)
            else:
                compiling = args.compile is True
            if compiling and args.compile_mode:
                from knowledge_map.gpu import CompiledEncoder

                setup, encoder = sync_timed(lambda: CompiledEncoder(job_model, mode=args.compile_mode))
            else:
                setup, encoder = sync_timed(
                    lambda: make_encoder(job_model, device, "torch", "float32", compile=compiling))
            first, out = sync_timed(lambda: embed_texts(job_model, texts, args.batch_size, prompt, encoder=encoder))
            steady = [sync_timed(lambda: embed_texts(job_model, texts, args.batch_size, prompt, encoder=encoder))[0]
                      for _ in range(args.repeats)]
            steady_s = float(np.median(steady))
            outputs["workflow"] = out[: len(baseline)]
            record = encoder.record() if compiling else None
            result["workflow"] = {
                "compiled": record, "setup_s": round(setup, 2), "first_pass_s": round(first, 2),
                "steady_s": [round(t, 3) for t in steady], "texts_per_s": round(len(texts) / steady_s, 1),
                "job_texts_per_s": round(len(texts) / (setup + first), 1),
                "share_of_peak": share(steady_s, flops), "share_of_peak_job": share(setup + first, flops),
                "projected_250k_s": round(setup + first * 250_000 / len(texts), 1),
            }
            del job_model, encoder
        if "eager" in paths:
            encoder = TorchEncoder(model, length_multiple=args.length_multiple or 1)
            eager = texts[: args.eager_texts or len(texts)]
            eager_flops = encoder_flops(lengths[: len(eager)], *shape)
            first, out = sync_timed(lambda: embed_texts(model, eager, args.batch_size, prompt, encoder=encoder))
            steady = [sync_timed(lambda: embed_texts(model, eager, args.batch_size, prompt, encoder=encoder))[0]
                      for _ in range(args.repeats)]
            steady_s = float(np.median(steady))
            outputs["eager"] = out[: len(baseline)]
            result["eager"] = {
                "texts": len(eager), "length_multiple": args.length_multiple or 1, "first_pass_s": round(first, 2),
                "steady_s": [round(t, 3) for t in steady], "texts_per_s": round(len(eager) / steady_s, 1),
                "share_of_peak": share(steady_s, eager_flops),
            }

        def encode(encoder_model, batch, subset=None):
            return lambda: encoder_model.encode(subset or baseline, batch_size=batch, prompt=prompt or None,
                                                normalize_embeddings=True, convert_to_numpy=True,
                                                show_progress_bar=False)

        if "careful" in paths:
            encode(model, args.careful_batch, baseline[:64])()  # warm-up: kernels and allocator, not throughput
            times, out = zip(*[sync_timed(encode(model, args.careful_batch)) for _ in range(args.repeats)])
            seconds = float(np.median(times))
            outputs["careful"] = out[0]
            result["careful"] = {"batch_size": args.careful_batch, "seconds": [round(t, 3) for t in times],
                                 "texts_per_s": round(len(baseline) / seconds, 1),
                                 "share_of_peak": share(seconds, baseline_flops)}
        if "naive" in paths:
            del model
            reference = load_model(model_name, device, "float32", args.max_seq_length)
            encode(reference, 32, baseline[:64])()
            times, out = zip(*[sync_timed(encode(reference, 32)) for _ in range(args.repeats)])
            seconds = float(np.median(times))
            result["naive"] = {"seconds": [round(t, 3) for t in times],
                               "texts_per_s": round(len(baseline) / seconds, 1)}
            for key, vectors in outputs.items():
                result[key]["min_cosine_vs_float32"] = round(float(cosines(vectors, out[0]).min()), 6)
    for key in ("careful", "naive"):
        if key in result and "workflow" in result:
            result[f"workflow_vs_{key}"] = round(result["workflow"]["texts_per_s"] / result[key]["texts_per_s"], 2)
            result[f"workflow_job_vs_{key}"] = round(
                result["workflow"]["job_texts_per_s"] / result[key]["texts_per_s"], 2)
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from knowledge_map.backends import make_encoder
    from knowledge_map.devtools.perf import cpu_clock_ghz, cpu_peak_flops, median, timed
    from knowledge_map.embed import embed_texts, token_lengths
    from knowledge_map.flops import encoder_flops, gpu_peak_flops, model_shape
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
    device = resolve_device(args.device)
    model_name = resolve_model_name(args.model, args.random_shape)
    prompt = resolve_prompt(args.model, None)
    if args.long:
        from transformers import AutoTokenizer

        from knowledge_map.models import resolve_model_path

        texts = long_texts(AutoTokenizer.from_pretrained(resolve_model_path(model_name)), args.texts,
                           args.max_seq_length)
    elif args.min_chars:
        texts = article_length_texts(args.texts, args.min_chars)
    else:
        texts = load_texts(args.texts)
    if device == "cuda" or args.cuda_steps_on_cpu:
        result = {"benchmark": "embed", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"), "device": device, "model": args.model, "long": args.long,
            "max_seq_length": args.max_seq_length, "batch_size": args.batch_size, "sdpa": args.sdpa,
            "versions": {"torch": torch.__version__, "cuda": torch.version.cuda},
            **measure_cuda(args, texts, prompt, model_name, device)}
        print(json.dumps(result))
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                json.dump(result, handle, indent=1)
        return result
    backend = resolve_backend(args.backend, device)
    precision = resolve_cpu_precision(args.cpu_precision, backend)
    dtype = resolve_dtype(args.model, "auto", device)

    reference = load_model(model_name, device, "float32", args.max_seq_length)
    model = reference if dtype == "float32" else load_model(model_name, device, dtype, args.max_seq_length)
    plan = None
    if precision == "int8":
        # Calibrated and judged on the corpus the texts come from, as the workflow does.
        plan = plan_from_texts(load_texts(10**9), Int8Settings(), prompt)
    setup, encoder = timed(lambda: make_encoder(
        model, device, backend, precision, args.threads, model_sha256(model_name),
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
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
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
