"""How far apart unrelated texts are in a model's space: the unit of every kernel temperature.

Embedding models differ in where their cosine similarities sit.  For
all-MiniLM-L6-v2 two random vital articles have a median cosine of 0.04;
models whose vectors share a common component (Qwen3-Embedding and E5 report
0.6-0.9 between unrelated texts) sit far higher, with the same neighbours.
A temperature in absolute cosine units then means something else for every
model: with cosines raised as cos' = a + (1 - a) cos (a = 0.5), the
knowledge kernel at T = 0.1 let every answer outweigh the prior on all
10,033 articles instead of about 8 per question.

So temperatures are in units of ``1 - median cosine`` of two articles
(:func:`dissimilarity_unit`): a kernel ``exp(-(1 - s) / (T * unit))`` and a
softmax ``exp((s - s_max) / (T * unit))`` are then exactly the same under
any such shift.  For MiniLM on the vital articles the unit is 0.962.
"""

from __future__ import annotations

import numpy as np

#: Articles sampled (evenly spaced rows) to measure the unit: ~2 million pairs, a fraction of a second.
SAMPLE_ROWS = 2000


def dissimilarity_unit(embeddings) -> float:
    """``1 - median cosine`` over the pairs of an evenly spaced sample of rows (L2-normalised embeddings).

    Deterministic (fixed rows, float64); 1.0 with fewer than two rows.  The
    floor 1e-3 keeps a degenerate corpus (every text the same) finite.
    """
    n = len(embeddings)
    if n < 2:
        return 1.0
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).astype(np.int64))
    sample = np.asarray(embeddings[rows], dtype=np.float64)
    cosines = (sample @ sample.T)[np.triu_indices(len(rows), 1)]
    return float(max(1.0 - np.median(cosines), 1e-3))
