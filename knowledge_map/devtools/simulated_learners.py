"""Simulated learners with a known knowledge field, to test the estimator and the question order.

A simulated learner's true ability at a place ``x`` of the 2-D map is::

    theta_true(x) = a + sum_k h_k exp(-|x - c_k|^2 / (2 r^2))

a global ability ``a ~ N(0, 0.5)`` plus ``bumps`` Gaussian bumps of height
``h_k ~ +-U(1.5, 3)`` (areas the learner knows well or not at all) centred on
random articles, of width ``r``.  The field lives on the 2-D map, not in the
embedding space the estimator works in, so a good score is not built in.
Questions get difficulties ``b_q ~ N(0, difficulty_sd)``; an answer to ``q``
is right with probability ``sigma(theta_true(x_q) - b_q)``.  An article
counts as known when ``theta_true(x_i) > mean(b)`` (a question of average
difficulty about it is more likely right than wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from knowledge_map.knowledge import sigmoid


@dataclass
class Learner:
    """One simulated learner: true ability at every article and question."""

    article_theta: np.ndarray
    question_theta: np.ndarray

    def answer(self, q: int, difficulty: float, rng: np.random.Generator) -> int:
        """1 (right) with probability sigma(theta_true(x_q) - b_q), else 0."""
        return int(rng.random() < sigmoid(self.question_theta[q] - difficulty))

    def known(self, mean_difficulty: float) -> np.ndarray:
        """Which articles this learner knows (theta_true > mean difficulty)."""
        return self.article_theta > mean_difficulty


def field(points, centres, heights, width: float, base: float) -> np.ndarray:
    """theta_true at ``points``: base + sum_k h_k exp(-|p - c_k|^2 / (2 width^2))."""
    points = np.asarray(points, dtype=np.float64)
    d2 = ((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(axis=-1)
    return base + (np.asarray(heights) * np.exp(-d2 / (2.0 * width * width))).sum(axis=1)


def simulate_learner(article_xy, question_xy, rng: np.random.Generator, bumps: int = 4, width: float = 0.12) -> Learner:
    """A learner with ``bumps`` random areas of knowledge or ignorance on the map."""
    article_xy = np.asarray(article_xy, dtype=np.float64)
    centres = article_xy[rng.choice(len(article_xy), size=bumps, replace=False)]
    heights = rng.choice([-1.0, 1.0], size=bumps) * rng.uniform(1.5, 3.0, size=bumps)
    base = rng.normal(0.0, 0.5)
    return Learner(field(article_xy, centres, heights, width, base), field(question_xy, centres, heights, width, base))


def simulate_difficulties(n_questions: int, rng: np.random.Generator, sd: float = 1.0) -> np.ndarray:
    """Question difficulties b_q ~ N(0, sd)."""
    return rng.normal(0.0, sd, size=n_questions)
