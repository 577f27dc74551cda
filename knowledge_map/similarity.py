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


def pair_cosines(embeddings) -> np.ndarray:
    """Cosines of every pair in an evenly spaced sample of rows (L2-normalised embeddings; float64, deterministic)."""
    n = len(embeddings)
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).astype(np.int64))
    sample = np.asarray(embeddings[rows], dtype=np.float64)
    return (sample @ sample.T)[np.triu_indices(len(rows), 1)]


def dissimilarity_unit(embeddings) -> float:
    """``1 - median cosine`` of two articles (:func:`pair_cosines`).

    1.0 with fewer than two rows.  The floor 1e-3 keeps a degenerate corpus
    (every text the same) finite.
    """
    if len(embeddings) < 2:
        return 1.0
    return float(max(1.0 - np.median(pair_cosines(embeddings)), 1e-3))


#: A question whose best article is no more like it than this share of unrelated article pairs are is "remote".
REMOTE_QUANTILE = 0.99


def remote_threshold(embeddings) -> float:
    """The cosine that only 1 % of article pairs reach (0.32 for MiniLM on the vital articles).

    Below two rows there are no pairs to compare with: -1.0, so no question is called remote.
    """
    if len(embeddings) < 2:
        return -1.0
    return float(np.quantile(pair_cosines(embeddings), REMOTE_QUANTILE))


def remote_questions(question_embeddings, embeddings, threshold: float) -> list[int]:
    """Questions whose most similar article is no more similar than :func:`remote_threshold`.

    Such a question is about nothing in the corpus (a lecture's logistics, a
    topic the articles lack): placement still puts it on its most similar
    article, but its answers say nothing about that region.  A measure of
    the space alone, so it does not move with the knowledge kernel's settings.
    """
    best = np.full(len(question_embeddings), -np.inf)
    q = np.asarray(question_embeddings, dtype=np.float64)
    for start in range(0, len(embeddings), 65536):
        best = np.maximum(best, (q @ np.asarray(embeddings[start:start + 65536], dtype=np.float64).T).max(axis=1))
    return [int(i) for i in np.flatnonzero(best <= threshold)]
