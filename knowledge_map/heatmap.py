"""The knowledge heatmap: what a learner probably knows, estimated from quiz answers.

At a map point p the estimate is a Gaussian-kernel-weighted mean of the
answers' correctness c_i (1 right, 0 wrong), pulled towards 0.5 by a prior
of weight w0 so that places far from every answer read "no evidence"
(0.5) instead of copying the nearest answer's outcome across the map::

    w_i(p) = exp(-|p - q_i|^2 / (2 sigma^2))
    K(p)   = (sum_i w_i c_i + w0 * 0.5) / (sum_i w_i + w0)

With w0 = 0 this is the plain weighted mean (and 0.5 when there are no
answers at all).  The grid is evaluated at cell centres ((g + 0.5) / n,
the convention of :mod:`knowledge_map.grid`).  ``site/js/heatmap.js``
implements the same formula; a browser test checks both agree to 1e-6.
"""

from __future__ import annotations

import numpy as np

from knowledge_map.grid import cell_center

NO_EVIDENCE = 0.5


def knowledge_at(px, py, answers_xy, correct, sigma: float, prior_weight: float):
    """Estimate and total kernel weight (evidence) at points ``(px, py)``.

    Parameters
    ----------
    px, py: array-like
        Map coordinates in [0, 1] where the estimate is wanted (any shape, broadcast together).
    answers_xy: array-like, shape (k, 2)
        Where the answered questions sit on the map.
    correct: array-like of bool or 0/1, shape (k,)
        Outcome of each answer.
    sigma: float
        Kernel width in normalised map units.
    prior_weight: float
        Weight w0 of the 0.5 prior (0 for the plain weighted mean).

    Returns
    -------
    (estimate, evidence): arrays of the broadcast shape of ``px`` and ``py``.
    """
    px, py = np.broadcast_arrays(np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64))
    answers = np.asarray(answers_xy, dtype=np.float64).reshape(-1, 2)
    outcome = np.asarray(correct, dtype=np.float64).reshape(-1)
    dx = px[..., None] - answers[:, 0]
    dy = py[..., None] - answers[:, 1]
    weights = np.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma))
    evidence = weights.sum(axis=-1)
    total = evidence + prior_weight
    weighted = (weights * outcome).sum(axis=-1) + prior_weight * NO_EVIDENCE
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), NO_EVIDENCE)
    return estimate, evidence


def knowledge_grid(answers_xy, correct, sigma: float, n: int, prior_weight: float) -> np.ndarray:
    """The ``n x n`` estimate at cell centres, indexed ``[gy, gx]``."""
    centres = cell_center(np.arange(n), n)
    gx, gy = np.meshgrid(centres, centres)
    estimate, _ = knowledge_at(gx, gy, answers_xy, correct, sigma, prior_weight)
    return estimate
