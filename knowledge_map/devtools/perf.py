"""Measuring helpers shared by benchmarks/: timings, peak memory, CPU peaks, synthetic matrices.

FLOP counts and GPU peaks live in :mod:`knowledge_map.flops` (the CUDA engine
uses them to decide whether compiling pays).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def cpu_peak_flops(cores: int, ghz: float, flops_per_cycle: float) -> float:
    """cores x clock x FLOP per cycle per core (e.g. 32 for float32 FMA on two 256-bit pipes)."""
    return float(cores * ghz * 1e9 * flops_per_cycle)


def cpu_clock_ghz(cpuinfo: str = "/proc/cpuinfo") -> float | None:
    """The clock /proc/cpuinfo reports for the first core, in GHz (None where it is not reported)."""
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) / 1000
    except (OSError, ValueError):
        pass
    return None


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call, on the monotonic clock."""
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_measured(argv: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python argv...`` in a fresh process and return its last stdout line, parsed as JSON.

    A fresh process per measurement keeps each peak RSS its own (a
    process's maximum never goes down; the child reports
    :func:`peak_rss_bytes` itself) and keeps numba caches, thread pools and
    allocator state of one side from helping the other.
    """
    command = [sys.executable, *argv]
    env = {**os.environ, **(env or {})}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def clustered_matrix(n: int, dim: int, clusters: int = 60, subspace: int = 12, seed: int = 0, block: int = 20000) -> np.ndarray:
    """A synthetic embedding matrix with cluster structure, rows L2-normalised, float32.

    Row i of cluster c is ``mu_c + B_c z_i + 0.15 e_i`` with ``mu_c`` and the
    ``subspace`` x ``dim`` basis ``B_c`` (scaled 0.35) Gaussian per cluster,
    ``z_i`` standard normal in ``subspace`` dimensions and ``e_i`` isotropic
    noise: clusters that are locally low-dimensional, as real embeddings
    are, rather than isotropic blobs.  Built in blocks; the same seed gives
    the same bytes.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    bases = (rng.standard_normal((clusters, subspace, dim)) * 0.35).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        part = labels[start : start + block]
        z = rng.standard_normal((len(part), subspace)).astype(np.float32)
        noise = rng.standard_normal((len(part), dim)).astype(np.float32)
        rows = centres[part] + np.einsum("ns,nsd->nd", z, bases[part]) + 0.15 * noise
        out[start : start + block] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out
