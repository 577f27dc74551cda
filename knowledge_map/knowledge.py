"""What a learner probably knows, estimated from their quiz answers in the embedding space.

The model
---------
A learner's chance of answering question ``q`` right is a Rasch (one-parameter
logistic) model with a *local* ability: ``P(right) = sigma(theta(x_q) - b_q)``
where ``b_q`` is the question's difficulty (0 unless calibrated from past
answers, see :mod:`knowledge_map.calibration`) and ``theta(x)`` is what the
learner knows around the point ``x`` of the map.  ``theta`` at a target (an
article or a question) is the maximum a-posteriori ability given the answers
``j`` weighted by how close each answered question is to the target::

    maximise  sum_j w_j [c_j log p_j + (1 - c_j) log(1 - p_j)] - lambda (theta - a)^2 / 2
    p_j = sigma(theta - b_j),   lambda = prior_weight / 4

``c_j`` is 1 for a right answer and 0 for a wrong one.  The Gaussian prior
(precision ``lambda``) pulls a target with little evidence back to ``a``, the
learner's overall ability (:func:`overall_ability`: the same model over all
their answers, each of weight 1, with calibration's N(0, 1) prior; 0, an
average learner, before any answer).  ``prior_weight`` is in
units of answers of weight 1, and the factor 1/4 makes one answer of weight
``prior_weight`` at ``p = 0.5`` carry as much information as the prior.
It is solved by :data:`NEWTON_STEPS` safeguarded Newton steps from ``a`` (the
objective is strictly concave in one variable), within ``|theta| <= THETA_MAX``.
``site/js/knowledge.js`` runs the same steps in the same order; a browser
test checks both agree to 1e-6.

Kernels
-------
``embedding`` (default): ``w = exp((s - 1) / (T u))`` with ``s`` the cosine
similarity of the two texts' embeddings, so similarity in the model's space
decides, not distance on the 2-D map (which keeps little of it: see the
README).  ``u`` is the space's :func:`knowledge_map.similarity.dissimilarity_unit`
(1 - the median cosine of two articles), so T means the same for every model.  ``map``: the seed's Gaussian kernel over map distance,
``w = exp(-d^2 / (2 sigma^2))``, kept for replicating the paper.

What the map shows
------------------
Each article ``i`` gets ``theta_i`` and the probability of answering a
question of average difficulty about it, ``sigma(theta_i - mean_difficulty)``
(``sigma(a - mean_difficulty)`` where no answer is near).  Its uncertainty is the posterior variance
``1 / h_i`` with ``h_i = sum_j w_ij p_ij (1 - p_ij) + lambda`` (Laplace).

Scale
-----
The page cannot hold an articles x questions weight matrix at 250,000
articles, so each question keeps a sparse list of the ``neighbours``
articles it weighs most (:func:`neighbour_lists`, float32 weights); an
article outside a list gets weight 0 from that question.  The page and
Python both compute from these lists.
:func:`sparse_error` measures what that costs against the full computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge_map.calibration import ABILITY_SD

#: Newton steps from the prior's centre; the JS copy runs the same number.
NEWTON_STEPS = 25
#: |theta| bound: sigma(8) = 0.99966, i.e. "certainly known".
THETA_MAX = 8.0
#: The largest Newton step (logits): where probabilities saturate, a full step overshoots far.
STEP_MAX = 4.0
#: Precision of the prior on a learner's overall ability: calibration's N(0, ABILITY_SD^2).
ABILITY_PRECISION = 1.0 / ABILITY_SD**2


def sigmoid(z):
    """1 / (1 + exp(-z)), elementwise."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def embedding_kernel(similarity, temperature: float):
    """Weight of an answer for a target at cosine ``similarity``: exp((s - 1) / T), 1 for the same text."""
    return np.exp((np.asarray(similarity, dtype=np.float64) - 1.0) / temperature)


def map_kernel(distance, sigma: float):
    """The seed's weight at 2-D map ``distance``: exp(-d^2 / (2 sigma^2))."""
    d = np.asarray(distance, dtype=np.float64)
    return np.exp(-(d * d) / (2.0 * sigma * sigma))


@dataclass(frozen=True)
class Settings:
    """The estimator's settings (config ``heatmap``).

    kernel: "embedding" or "map"; temperature: T of the embedding kernel;
    sigma: width of the map kernel; prior_weight: weight of the prior (centred at
    the learner's overall ability), in answers of weight 1; unit: the space's
    dissimilarity unit, the scale of T (:mod:`knowledge_map.similarity`; 1.0 is
    plain cosine units).
    """

    kernel: str = "embedding"
    temperature: float = 0.1
    sigma: float = 0.15
    prior_weight: float = 0.01
    unit: float = 1.0

    @classmethod
    def from_config(cls, heatmap: dict, unit: float = 1.0) -> Settings:
        """From config ``heatmap`` (validated, so every key is there; missing ones keep these defaults)."""
        return cls(
            kernel=heatmap.get("space", cls.kernel),
            temperature=float(heatmap.get("temperature", cls.temperature)),
            sigma=float(heatmap.get("sigma", cls.sigma)),
            prior_weight=float(heatmap.get("prior_weight", cls.prior_weight)),
            unit=float(unit),
        )

    @property
    def precision(self) -> float:
        """lambda = prior_weight / 4 (see the module docstring)."""
        return self.prior_weight / 4.0


def local_ability(weights, correct, difficulty, precision: float, centre=0.0):
    """MAP ability theta and information h for each target (rows of ``weights``).

    Parameters
    ----------
    weights: array, shape (targets, answers)
        Kernel weight of each answer for each target (0 = no influence).
    correct: array of 0/1, shape (answers,) or (targets, answers)
    difficulty: array, shape (answers,) or (targets, answers)
        The answered questions' difficulties b_j.
    precision: float
        lambda, the prior's precision (> 0).
    centre: float or array of shape (targets,)
        The prior's mean: the learner's overall ability (:func:`overall_ability`),
        which a target with no evidence of its own returns to.

    Returns
    -------
    (theta, information): arrays of shape (targets,).

    Newton's method, safeguarded: a step moves at most :data:`STEP_MAX`, and
    since the gradient falls as theta rises (the objective is concave), each
    gradient's sign narrows a bracket around the optimum; a step that would
    leave the bracket bisects it instead.  Plain Newton could cycle where the
    answers' probabilities saturate and the information is nearly the prior's
    (w = [0.0209, 0.1705], c = [0, 1], b = [3.98, 2.13] went 7.98, -3.93, 8,
    -3.98, ... and ended at the clamp, 8, for an optimum of 4.08); bracket
    without the cap could still crawl.  With both, 20,000 random hard cases
    (1-7 answers, weights 1e-4 to 1, difficulties -4 to 4) all end where a
    further Newton step moves less than 1e-12 (tests/test_knowledge.py).
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    b = np.asarray(difficulty, dtype=np.float64)
    mean = np.clip(np.broadcast_to(np.asarray(centre, dtype=np.float64), w.shape[:-1]), -THETA_MAX, THETA_MAX)
    theta = mean.copy()
    # The bracket starts just past the bounds (no end evaluated yet), so a first step may reach a bound.
    low, high = np.full(w.shape[:-1], -THETA_MAX - 1.0), np.full(w.shape[:-1], THETA_MAX + 1.0)
    for _ in range(NEWTON_STEPS):
        p = sigmoid(theta[..., None] - b)
        gradient = (w * (c - p)).sum(axis=-1) - precision * (theta - mean)
        information = (w * p * (1.0 - p)).sum(axis=-1) + precision
        low = np.where(gradient > 0, theta, low)
        high = np.where(gradient < 0, theta, high)
        step = np.clip(theta + np.clip(gradient / information, -STEP_MAX, STEP_MAX), -THETA_MAX, THETA_MAX)
        keep = ((step > low) & (step < high)) | (step == theta)  # (step == theta: converged)
        theta = np.where(keep, step, np.clip(0.5 * (low + high), -THETA_MAX, THETA_MAX))
    p = sigmoid(theta[..., None] - b)
    information = (w * p * (1.0 - p)).sum(axis=-1) + precision
    return theta, information


def overall_ability(correct, difficulty) -> float:
    """The learner's ability over all their answers, each of weight 1, under the calibration's N(0, 1) prior.

    The centre of every local estimate: answers say most about how much a
    learner knows in general, and a region no answer is near is predicted
    from that, not from an average learner (``theta = 0``).  On simulated
    learners who differ in overall ability the estimate centred here beat both
    the one centred at 0 and ability + difficulty without the map (docs/knowledge.md).
    """
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    if not len(c):
        return 0.0
    b = np.broadcast_to(np.asarray(difficulty, dtype=np.float64), c.shape)
    theta, _ = local_ability(np.ones((1, len(c))), c, b, ABILITY_PRECISION)
    return float(theta[0])


def question_weights(settings: Settings, question_embeddings=None, embeddings=None,
                     question_xy=None, xy=None, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(questions x articles[start:stop]) kernel weights, from the embeddings or the map positions."""
    if settings.kernel == "embedding":
        q = np.asarray(question_embeddings, dtype=np.float64)
        a = np.asarray(embeddings[start:stop], dtype=np.float64)
        return embedding_kernel(q @ a.T, settings.temperature * settings.unit)
    if settings.kernel == "map":
        q = np.asarray(question_xy, dtype=np.float64).reshape(-1, 2)
        a = np.asarray(xy[start:stop], dtype=np.float64)
        return map_kernel(np.hypot(q[:, 0, None] - a[:, 0], q[:, 1, None] - a[:, 1]), settings.sigma)
    raise ValueError(f"unknown heatmap kernel {settings.kernel!r}")


@dataclass
class NeighbourLists:
    """Each question's ``k`` heaviest articles and their kernel weights (CSR layout).

    ``rows[offsets[q]:offsets[q+1]]`` are question q's articles in decreasing
    weight (ties by lower row), ``weights`` their float32 kernel weights.
    An article outside a question's list gets weight 0 from it.
    """

    offsets: np.ndarray  # uint32, (Q + 1,)
    rows: np.ndarray  # uint32, (P,)
    weights: np.ndarray  # float32, (P,)
    n_articles: int

    def of(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, weights) of question ``q``'s list."""
        a, b = int(self.offsets[q]), int(self.offsets[q + 1])
        return self.rows[a:b].astype(np.int64), self.weights[a:b].astype(np.float64)

    def dense(self, questions: Sequence[int]) -> np.ndarray:
        """(articles x len(questions)) weights, 0 where an article is not in a list."""
        out = np.zeros((self.n_articles, len(questions)), dtype=np.float64)
        for k, q in enumerate(questions):
            rows, weights = self.of(int(q))
            out[rows, k] = weights
        return out

    @property
    def n_questions(self) -> int:
        return len(self.offsets) - 1


def neighbour_lists(settings: Settings, k: int, question_embeddings=None, embeddings=None,
                    question_xy=None, xy=None, block: int = 16384) -> NeighbourLists:
    """Each question's ``k`` heaviest articles under the kernel of ``settings``.

    Articles are scanned in blocks (memory: questions x (k + block) floats),
    so 250,000 articles and thousands of questions fit in a few GB at most.
    """
    n = len(embeddings) if settings.kernel == "embedding" else len(xy)
    n_q = len(question_embeddings) if settings.kernel == "embedding" else len(question_xy)
    k = min(k, n)
    best_w = np.zeros((n_q, 0), dtype=np.float64)
    best_i = np.zeros((n_q, 0), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        w = question_weights(settings, question_embeddings, embeddings, question_xy, xy, start, stop)
        best_w = np.concatenate([best_w, w], axis=1)
        best_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, stop), w.shape)], axis=1)
        if best_w.shape[1] > k:
            keep = np.argpartition(-best_w, k - 1, axis=1)[:, :k]
            best_w = np.take_along_axis(best_w, keep, axis=1)
            best_i = np.take_along_axis(best_i, keep, axis=1)
    order = np.lexsort((best_i, -best_w), axis=1)
    best_w = np.take_along_axis(best_w, order, axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    offsets = np.arange(n_q + 1, dtype=np.int64) * best_w.shape[1]
    return NeighbourLists(offsets.astype("<u4"), best_i.reshape(-1).astype("<u4"),
                          best_w.reshape(-1).astype("<f4"), n)


@dataclass
class ArticleState:
    """The estimate over every article after some answers (see the module docstring)."""

    theta: np.ndarray
    information: np.ndarray
    evidence: np.ndarray  # sum of kernel weights
    known: np.ndarray  # sum of kernel weights of right answers
    value: np.ndarray  # sigma(theta - mean_difficulty)
    overall: float = 0.0  # the learner's overall ability, where theta returns without local evidence


def article_state(weights, correct, difficulty, settings: Settings, mean_difficulty: float = 0.0) -> ArticleState:
    """:class:`ArticleState` from (articles x answers) ``weights`` and the answers' outcomes and difficulties.

    Every answer given is a column of ``weights``: the prior's centre is the
    learner's :func:`overall_ability` from all of them.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    b = np.broadcast_to(np.asarray(difficulty, dtype=np.float64), c.shape)
    overall = overall_ability(c, b)
    theta, information = local_ability(w, c, b, settings.precision, overall)
    return ArticleState(
        theta=theta,
        information=information,
        evidence=w.sum(axis=1),
        known=(w * c).sum(axis=1),
        value=sigmoid(theta - mean_difficulty),
        overall=overall,
    )


def sparse_error(lists: NeighbourLists, settings: Settings, question_embeddings=None, embeddings=None,
                 question_xy=None, xy=None, answer_counts=(3, 10, 30), trials: int = 20, seed: int = 0) -> dict:
    """What the sparse lists cost: |value_sparse - value_full| over all articles, for random answer sets.

    For each count, ``trials`` random sets of answered questions with random
    outcomes; the full computation weighs every article.  Returns the mean
    and max absolute difference of the article values per count and overall.
    """
    rng = np.random.default_rng(seed)
    report, worst, total, cells = {}, 0.0, 0.0, 0
    for count in answer_counts:
        count = min(count, lists.n_questions)
        means, maxes = [], []
        for _ in range(trials):
            answered = rng.choice(lists.n_questions, size=count, replace=False)
            correct = rng.integers(0, 2, size=count)
            q_emb = None if question_embeddings is None else np.asarray(question_embeddings)[answered]
            q_xy = None if question_xy is None else np.asarray(question_xy)[answered]
            full = question_weights(settings, q_emb, embeddings, q_xy, xy).T
            exact = article_state(full, correct, 0.0, settings).value
            sparse = article_state(lists.dense(answered), correct, 0.0, settings).value
            diff = np.abs(exact - sparse)
            means.append(float(diff.mean()))
            maxes.append(float(diff.max()))
            total, cells = total + float(diff.sum()), cells + diff.size
        report[str(count)] = {"mean_abs": float(np.mean(means)), "max_abs": float(np.max(maxes))}
        worst = max(worst, float(np.max(maxes)))
    report["overall"] = {"mean_abs": total / max(cells, 1), "max_abs": worst}
    return report


def state_from_lists(lists: NeighbourLists, answered: Sequence[int], correct, difficulty, settings: Settings,
                     mean_difficulty: float = 0.0) -> ArticleState:
    """:func:`article_state` over every article from the neighbour lists, as the page computes it.

    ``difficulty`` is indexed by question (all questions).  Only the articles
    in some answered question's list are solved; the rest keep the prior:
    theta at the learner's overall ability (0 before any answer).
    """
    n = lists.n_articles
    precision = settings.precision
    answered = [int(q) for q in answered]
    b = np.asarray(difficulty, dtype=np.float64)[answered]
    overall = overall_ability(correct, b)
    state = ArticleState(np.full(n, overall), np.full(n, precision), np.zeros(n), np.zeros(n),
                         np.full(n, float(sigmoid(overall - mean_difficulty))), overall)
    if not answered:
        return state
    touched = np.unique(np.concatenate([lists.of(q)[0] for q in answered]))
    position = np.full(n, -1, dtype=np.int64)
    position[touched] = np.arange(len(touched))
    weights = np.zeros((len(touched), len(answered)))
    for k, q in enumerate(answered):
        rows, w = lists.of(q)
        weights[position[rows], k] = w
    part = article_state(weights, correct, b, settings, mean_difficulty)
    for field in ("theta", "information", "evidence", "known", "value"):
        getattr(state, field)[touched] = getattr(part, field)
    return state


def write_lists(path, lists: NeighbourLists, attrs: dict) -> None:
    """``knowledge_lists.h5``: offsets, rows, weights and the settings/accuracy as JSON attrs, atomically."""
    import json

    import h5py

    from knowledge_map.io import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("offsets", data=lists.offsets)
            h5.create_dataset("rows", data=lists.rows)
            h5.create_dataset("weights", data=lists.weights)
            h5.attrs["n_articles"] = lists.n_articles
            h5.attrs["info"] = json.dumps(attrs, sort_keys=True)


def read_lists(path) -> tuple[NeighbourLists, dict]:
    """(lists, info) from :func:`write_lists`'s file."""
    import json

    import h5py

    with h5py.File(path, "r") as h5:
        lists = NeighbourLists(h5["offsets"][()], h5["rows"][()], h5["weights"][()], int(h5.attrs["n_articles"]))
        return lists, json.loads(h5.attrs["info"])
