"""Merge at scale: 250,000 x 1024 float32 shard files -> the merged HDF5, time and peak RSS.

The shards (seeded random rows, written like the embed rule writes them)
are made once in a temporary folder; each repeat merges them with
:func:`knowledge_map.merge.merge_shards` in a fresh process, so its peak
RSS is the merge's alone (Python, h5py and the ids/titles lists included).
Goal (issue 5): <= 60 s and peak RSS <= 1.2 x the matrix.

    python benchmarks/merge.py --quick      # 50,000 rows, 3 repeats
    python benchmarks/merge.py              # 250,000 x 1024, 16 shards, 3 repeats

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="where shards go (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = min(args.rows, 50_000)
    return args


def make_shards(folder: str, rows: int, dim: int, shards: int) -> list[str]:
    from knowledge_map.corpus import shard_bounds
    from knowledge_map.embed import write_shard
    from knowledge_map.identity import shard_identity

    identity = shard_identity(model="bench", model_sha256="0" * 64, prompt="", max_seq_length=512, dtype="float32",
                              backend="torch", precision="float32", quantization="", corpus_sha256="0" * 64, n_rows=rows,
                              n_shards=shards)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(shards):
        start, stop = shard_bounds(rows, shards, index)
        path = os.path.join(folder, f"shard-{index:04d}.h5")
        write_shard(path, rng.standard_normal((stop - start, dim), dtype=np.float32),
                    np.arange(start, stop), {**identity, "elapsed_seconds": 0.0})
        paths.append(path)
    return paths


def merge_once(folder: str, rows: int, shards: int) -> dict:
    """One merge in this process: seconds and peak RSS."""
    from knowledge_map.devtools.perf import peak_rss_bytes, timed
    from knowledge_map.merge import merge_shards

    paths = [os.path.join(folder, f"shard-{i:04d}.h5") for i in range(shards)]
    ids = [f"article-{i}" for i in range(rows)]
    titles = [f"Title {i}" for i in range(rows)]
    out = os.path.join(folder, "embeddings.h5")
    seconds, _ = timed(lambda: merge_shards(paths, out, ids, titles, "bench"))
    result = {"seconds": round(seconds, 3), "peak_rss_bytes": peak_rss_bytes(), "bytes": os.path.getsize(out)}
    os.remove(out)
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        result = merge_once(args.child, args.rows, args.shards)
        print(json.dumps(result))
        return result
    from knowledge_map.devtools.perf import median, run_measured

    folder = tempfile.mkdtemp(prefix="merge-bench-", dir=args.workdir)
    try:
        make_shards(folder, args.rows, args.dim, args.shards)
        runs = []
        for _ in range(args.repeats):
            runs.append(run_measured([os.path.abspath(__file__), "--child", folder, "--rows", str(args.rows),
                                      "--shards", str(args.shards)]))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    matrix = args.rows * args.dim * 4
    rss = median([r["peak_rss_bytes"] for r in runs])
    result = {
        "benchmark": "merge",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "shape": [args.rows, args.dim],
        "shards": args.shards,
        "repeats": args.repeats,
        "seconds": [r["seconds"] for r in runs],
        "median_seconds": median([r["seconds"] for r in runs]),
        "matrix_gb": round(matrix / 1e9, 3),
        "median_peak_rss_gb": round(rss / 1e9, 3),
        "rss_over_matrix": round(rss / matrix, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
