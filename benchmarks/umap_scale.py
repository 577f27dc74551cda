"""Mapping at scale: the workflow's UMAP step vs the naive call, each side in its own process.

Naive: ``umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine",
random_state=42).fit_transform(X)`` on the full matrix.  Workflow:
:func:`knowledge_map.mapping.fit_umap` with the configured settings
(the ``umap`` block of config/config.yaml: ``pca_dims``, ``n_epochs``,
``init``, ``knn``, ``exact_knn_rows``; ``--pca-dims``, ``--n-epochs`` and
``--exact-knn-rows`` override).  Each measurement is a fresh Python process (its own peak RSS,
its own numba compilation, as in a Snakemake job); sides alternate over the
repeats.  Trustworthiness@10 (cosine in the input space) is computed on a
fixed sample of 5,000 rows after the timing.

Data: ``synthetic`` is a clustered matrix (see
:func:`knowledge_map.devtools.perf.clustered_matrix`); ``vital`` is the 10,033 vital
articles embedded once with the workflow's fast path and cached in
results/cache/vital-embeddings.npy.

    python benchmarks/umap_scale.py --quick           # 50,000 x 768, 1 repeat: a few minutes
    python benchmarks/umap_scale.py                   # 250,000 x 768, 1 repeat per side
    python benchmarks/umap_scale.py --dataset vital --repeats 3

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
VITAL_CACHE = os.path.join("results", "cache", "vital-embeddings.npy")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 points, 1 repeat")
    parser.add_argument("--dataset", choices=("synthetic", "vital"), default="synthetic")
    parser.add_argument("--n", type=int, default=250_000, help="synthetic rows")
    parser.add_argument("--dim", type=int, default=768, help="synthetic columns")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pca-dims", type=int, default=None, help="override umap.pca_dims (0 = none)")
    parser.add_argument("--n-epochs", type=int, default=None, help="override umap.n_epochs")
    parser.add_argument("--exact-knn-rows", type=int, default=None,
                        help="override umap.exact_knn_rows (0 = always nn-descent)")
    parser.add_argument("--side", choices=("naive", "workflow"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 50_000)
    return args


def workflow_umap_settings(args) -> dict:
    """The umap block of config/config.yaml with schema defaults, then the command-line overrides."""
    import yaml

    from knowledge_map.config import validate_config

    with open(os.path.join(HERE, "..", "config", "config.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    validate_config(config)
    settings = dict(config["umap"])
    if args.pca_dims is not None:
        settings["pca_dims"] = args.pca_dims or None
    if args.n_epochs is not None:
        settings["n_epochs"] = args.n_epochs
    if args.exact_knn_rows is not None:
        settings["exact_knn_rows"] = args.exact_knn_rows
    return settings


def vital_embeddings() -> np.ndarray:
    """The vital articles' embeddings (workflow fast path), cached after the first call."""
    if os.path.exists(VITAL_CACHE):
        return np.load(VITAL_CACHE)
    from knowledge_map.backends import make_encoder
    from knowledge_map.corpus import document_text, load_vital_articles
    from knowledge_map.embed import embed_texts
    from knowledge_map.models import load_model, resolve_backend, resolve_cpu_precision
    from knowledge_map.quantize import Int8Settings, plan_from_texts

    records = load_vital_articles()
    texts = [document_text(r["title"], r["text"]) for r in records]
    model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)
    backend = resolve_backend("auto", "cpu")
    encoder = make_encoder(model, "cpu", backend, resolve_cpu_precision("auto", backend),
                           cache_dir=os.path.join("results", "cache", "openvino"),
                           int8=plan_from_texts(texts, Int8Settings()))
    embeddings = embed_texts(model, texts, 64, encoder=encoder)
    os.makedirs(os.path.dirname(VITAL_CACHE), exist_ok=True)
    np.save(VITAL_CACHE, embeddings)
    return embeddings


def load_data(args) -> np.ndarray:
    from knowledge_map.devtools.perf import clustered_matrix

    if args.dataset == "vital":
        return vital_embeddings()
    return clustered_matrix(args.n, args.dim, seed=0)


def run_side(args) -> dict:
    """One measurement in this process: fit, then trustworthiness; prints one JSON line."""
    from knowledge_map.devtools.perf import peak_rss_bytes, timed
    from knowledge_map.metrics import trustworthiness

    data = load_data(args)
    rss_data = peak_rss_bytes()
    if args.side == "naive":
        import umap

        seconds, coords = timed(lambda: umap.UMAP(
            n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42).fit_transform(data))
        settings = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "random_state": 42}
    else:
        from knowledge_map.mapping import fit_umap

        settings = workflow_umap_settings(args)
        seconds, (_, coords) = timed(lambda: fit_umap(data, **settings))
    rss = peak_rss_bytes()
    coords = np.asarray(coords, dtype=np.float32)
    started = time.perf_counter()
    trust = trustworthiness(data, coords, k=10, sample=5000, seed=0)
    return {
        "side": args.side,
        "seconds": round(seconds, 2),
        "peak_rss_bytes": rss,
        "data_rss_bytes": rss_data,
        "trustworthiness@10": round(trust, 4),
        "trustworthiness_seconds": round(time.perf_counter() - started, 1),
        "coords_sha256": hashlib.sha256(coords.tobytes()).hexdigest(),
        "settings": settings,
    }


def child_argv(args, side: str) -> list[str]:
    argv = [os.path.abspath(__file__), "--side", side, "--dataset", args.dataset, "--n", str(args.n),
            "--dim", str(args.dim)]
    if args.pca_dims is not None:
        argv += ["--pca-dims", str(args.pca_dims)]
    if args.n_epochs is not None:
        argv += ["--n-epochs", str(args.n_epochs)]
    if args.exact_knn_rows is not None:
        argv += ["--exact-knn-rows", str(args.exact_knn_rows)]
    return argv


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.side:
        result = run_side(args)
        print(json.dumps(result))
        return result
    from knowledge_map.devtools.perf import median, run_measured

    if args.dataset == "vital":
        vital_embeddings()  # embed once, outside any measurement
    runs = {"naive": [], "workflow": []}
    for _ in range(args.repeats):
        for side in ("naive", "workflow"):
            run = run_measured(child_argv(args, side))
            runs[side].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    naive_s = median([r["seconds"] for r in runs["naive"]])
    fast_s = median([r["seconds"] for r in runs["workflow"]])
    shape = (10033, 384) if args.dataset == "vital" else (args.n, args.dim)
    result = {
        "benchmark": "umap_scale",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": args.dataset,
        "shape": list(shape),
        "repeats": args.repeats,
        "naive_seconds": naive_s,
        "workflow_seconds": fast_s,
        "naive_peak_rss_gb": round(max(r["peak_rss_bytes"] for r in runs["naive"]) / 1e9, 3),
        "workflow_peak_rss_gb": round(max(r["peak_rss_bytes"] for r in runs["workflow"]) / 1e9, 3),
        "naive_trustworthiness@10": runs["naive"][0]["trustworthiness@10"],
        "workflow_trustworthiness@10": runs["workflow"][0]["trustworthiness@10"],
        "workflow_deterministic": len({r["coords_sha256"] for r in runs["workflow"]}) == 1
        if args.repeats > 1 else None,
        "workflow_settings": runs["workflow"][0]["settings"],
        "speedup_vs_naive": round(naive_s / fast_s, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
