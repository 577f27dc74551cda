"""Place questions on the map next to the articles they are about.

UMAP's ``transform`` places new points by optimising against a fuzzy graph
and, at scale, drops them far from their nearest articles.  Instead each
question is put at the weighted geometric median of the 2-D positions of
its ``k`` nearest articles in the embedding space, with softmax weights
``exp((s_i - s_max) / T)`` on the cosine similarities ``s_i``.

The median (unlike a mean) stays inside the main group of neighbours when
some of them sit in other regions of the map, and it sits exactly on one
article when that article's weight is at least the sum of the others'.  So
a small temperature T puts a question on its clearly most similar article,
and between articles that are almost equally similar.  On the shipped
questions and the vital articles (MiniLM), T = 0.03 gave map hit@1 0.97,
equal to the embedding space's, where plain similarity weights (k = 10)
gave 0.72: measured, see metrics.json.

Snapping onto one article puts different questions about that article on
one exact point (86 questions made of sentences from 40 vital articles took
54 distinct positions).  So each question then moves from the median
towards the weighted mean of its neighbours (softmax at the wider
``spread_temperature``), by at most half the distance from the median to
its nearest other article and at most ``max_spread`` (1 % of the map's
width, so a question on an isolated article stays visibly on it): it stays nearest to the same article
(map hit@1 unchanged, by construction) and questions that differ in their
other neighbours part (86 distinct positions, 11 instead of 80 sitting
exactly on an article; shipped set: hit@1 0.967, hit@10 0.983 unchanged).
"""

from __future__ import annotations

import numpy as np


def nearest_by_cosine(queries: np.ndarray, items: np.ndarray, k: int, block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` most similar rows of ``items`` for each query.

    Rows are assumed L2-normalised, so cosine is a dot product.  Items are
    scanned in blocks to bound memory at 250K+ rows.  Ties break towards the
    lower index, so results are deterministic.
    """
    queries = np.asarray(queries, dtype=np.float32)
    k = min(k, len(items))
    best_idx = np.zeros((len(queries), 0), dtype=np.int64)
    best_sim = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(items), block):
        sims = queries @ np.asarray(items[start : start + block], dtype=np.float32).T
        idx = np.broadcast_to(np.arange(start, start + sims.shape[1]), sims.shape)
        best_sim = np.concatenate([best_sim, sims], axis=1)
        best_idx = np.concatenate([best_idx, idx], axis=1)
        order = np.lexsort((best_idx, -best_sim), axis=1)[:, :k]
        best_sim = np.take_along_axis(best_sim, order, axis=1)
        best_idx = np.take_along_axis(best_idx, order, axis=1)
    return best_idx, best_sim


def weighted_geometric_median(points: np.ndarray, weights: np.ndarray, iterations: int = 200, tol: float = 1e-9) -> np.ndarray:
    """The point minimising sum_i w_i * |p - x_i| (Weiszfeld's algorithm).

    Starts at the weighted mean; a point sitting exactly on an input point
    is nudged by ``tol`` to keep the update defined.
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    estimate = (weights[:, None] * points).sum(axis=0) / weights.sum()
    for _ in range(iterations):
        distances = np.maximum(np.linalg.norm(points - estimate, axis=1), tol)
        inverse = weights / distances
        updated = (inverse[:, None] * points).sum(axis=0) / inverse.sum()
        if np.linalg.norm(updated - estimate) < tol:
            return updated
        estimate = updated
    return estimate


def softmax_weights(similarities: np.ndarray, temperature: float) -> np.ndarray:
    """exp((s_i - max s) / T): 1 for the most similar, smaller for the rest."""
    similarities = np.asarray(similarities, dtype=np.float64)
    return np.exp((similarities - similarities.max()) / temperature)


def nearest_other_distance(point: np.ndarray, xy: np.ndarray, tol: float = 1e-9) -> float:
    """Distance from ``point`` to the nearest map point not on it (inf if there is none)."""
    d = np.hypot(xy[:, 0] - point[0], xy[:, 1] - point[1])
    d = d[d > tol]
    return float(d.min()) if len(d) else float("inf")


def spread_from_median(median: np.ndarray, target: np.ndarray, gap: float, max_step: float) -> np.ndarray:
    """``median`` moved towards ``target`` by at most ``gap / 2`` and ``max_step``.

    Half the gap to the nearest other article keeps it nearest to what it was
    nearest to; ``max_step`` keeps a question on an isolated article visibly
    next to it.
    """
    step = target - median
    length = float(np.hypot(step[0], step[1]))
    if length == 0.0:
        return median
    return median + min(1.0, 0.5 * gap / length, max_step / length) * step


def place_on_map(
    neighbour_idx: np.ndarray, neighbour_sim: np.ndarray, xy: np.ndarray, temperature: float = 0.03,
    spread_temperature: float = 0.1, max_spread: float = 0.01,
) -> np.ndarray:
    """2-D position of each query: the softmax-weighted geometric median of its neighbours' positions,
    spread towards their weighted mean (see the module docstring)."""
    xy = np.asarray(xy, dtype=np.float64)
    placed = np.zeros((len(neighbour_idx), 2), dtype=np.float64)
    for q, (idx, sim) in enumerate(zip(neighbour_idx, neighbour_sim)):
        median = weighted_geometric_median(xy[idx], softmax_weights(sim, temperature))
        spread = softmax_weights(sim, spread_temperature)
        target = (spread[:, None] * xy[idx]).sum(axis=0) / spread.sum()
        placed[q] = spread_from_median(median, target, nearest_other_distance(median, xy), max_spread)
    return np.clip(placed, 0.0, 1.0)


def rank_of(target: int, scores: np.ndarray, higher_is_closer: bool) -> int:
    """1-based rank of ``target`` among all rows by ``scores`` (1 = closest); ties rank optimistically."""
    value = scores[target]
    closer = (scores > value) if higher_is_closer else (scores < value)
    return int(closer.sum()) + 1


def place_questions(
    questions: list[dict],
    question_embeddings: np.ndarray,
    embeddings: np.ndarray,
    xy: np.ndarray,
    titles: list[str],
    k: int,
    temperature: float = 0.03,
    spread_temperature: float = 0.1,
    max_spread: float = 0.01,
    unit: float = 1.0,
) -> list[dict]:
    r"""Questions with ``x``, ``y`` on the map, their nearest articles and, when the
    source article is in the corpus, its rank among all articles in the
    embedding space (``rank_embedding``) and on the map (``rank_map``).

    The temperatures are in ``unit``\ s, the space's dissimilarity unit
    (:mod:`knowledge_map.similarity`), so they mean the same for every model.
    """
    row_of = {title: row for row, title in enumerate(titles)}
    idx, sim = nearest_by_cosine(question_embeddings, embeddings, k)
    positions = place_on_map(idx, sim, xy, temperature * unit, spread_temperature * unit, max_spread)
    placed = []
    for q, question in enumerate(questions):
        source = row_of.get(question.get("source_article") or "", -1)
        item = {key: value for key, value in question.items() if key not in ("x", "y")}
        item["x"], item["y"] = float(positions[q, 0]), float(positions[q, 1])
        item["nearest_articles"] = [titles[i] for i in idx[q, :3]]
        item["source_row"] = source if source >= 0 else None
        if source >= 0:
            item["rank_embedding"] = rank_of(source, embeddings @ question_embeddings[q], higher_is_closer=True)
            distances = np.linalg.norm(xy.astype(np.float64) - positions[q], axis=1)
            item["rank_map"] = rank_of(source, distances, higher_is_closer=False)
        placed.append(item)
    return placed


def hit_rate(placed: list[dict], field: str, k: int) -> float | None:
    """Share of placed questions with a known source whose ``field`` rank is at most ``k``."""
    ranks = [q[field] for q in placed if q.get(field) is not None]
    return float(np.mean([r <= k for r in ranks])) if ranks else None


def placement_spread(positions: np.ndarray, question_embeddings: np.ndarray, xy: np.ndarray) -> dict:
    """How well placement keeps questions apart: distinct positions, positions exactly on an article,
    and the Spearman correlation of map distance with embedding dissimilarity (1 - cosine) over question pairs."""
    from scipy.stats import spearmanr

    positions = np.asarray(positions, dtype=np.float64)
    q = np.asarray(question_embeddings, dtype=np.float64)
    distinct = len({(round(float(x), 9), round(float(y), 9)) for x, y in positions})
    on_article = sum(nearest_other_distance(p, xy, tol=-1.0) < 1e-9 for p in positions)
    result = {"question_distinct_positions": distinct, "question_positions_on_an_article": int(on_article),
              "question_pairs_spearman_map_vs_embedding": None}
    if len(positions) >= 3:
        iu = np.triu_indices(len(positions), 1)
        distance = np.hypot(*(positions[:, None, :] - positions[None, :, :]).transpose(2, 0, 1))[iu]
        rho = spearmanr(distance, 1.0 - (q @ q.T)[iu])[0]
        result["question_pairs_spearman_map_vs_embedding"] = float(rho) if np.isfinite(rho) else None
    return result
