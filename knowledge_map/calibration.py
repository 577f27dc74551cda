"""Question difficulty from past learners' answers: a Rasch model with shrinkage.

Each person (a learner in one session) has an ability ``theta_p`` and each
question a difficulty ``b_q``; ``P(right) = sigma(theta_p - b_q)``.  The fit
maximises the joint posterior::

    sum log-likelihood  -  sum_p theta_p^2 / (2 s_theta^2)  -  sum_q (b_q - mu)^2 / (2 s_b^2)  -  mu^2 / (2 s_mu^2)

The difficulty prior shrinks a question with few answers towards the mean
difficulty ``mu`` (one answer moves it little, hundreds decide it); the
ability prior fixes the scale's origin at the average person, so
``theta = 0`` is "an average learner".  A question nobody answered gets
``mu``.  ``mu`` itself has a weak prior, N(0, MEAN_DIFFICULTY_SD^2): without
it, answers that are all right (or all wrong, or a single answer) have no
finite optimum, and the fit ran off to about -37 logits, so the page showed
"known" everywhere whatever a learner answered.  Against a shift of every
difficulty the prior weighs about one answer at p = 0.5 (curvature
Q / (s_b^2 + Q s_mu^2) = 0.249 with 60 questions, one answer's 0.25): with
hundreds of answers it barely moves the mean.

Integrating ``mu`` out leaves a Gaussian prior on ``b`` (covariance
``s_b^2 I + s_mu^2 11'``), and the posterior is maximised by Newton's
method over ``(theta, b)``: the abilities' block of the Hessian is
diagonal, so each step solves only a questions x questions system (the
Schur complement).  The objective is strictly convex (with no answers only
the prior is left; its optimum is all zeros and is returned as such), so the
steps (with backtracking) reach the one optimum in a handful of iterations
from any start; validation refits without each learner starting from the
full fit's difficulties (:mod:`knowledge_map.validation`), a few steps
each.  Deterministic: same answers, same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Prior standard deviations of abilities and of difficulties around their mean (logits).
ABILITY_SD = 1.0
DIFFICULTY_SD = 1.0
#: Prior standard deviation of the mean difficulty (logits): an average learner gets between 2 % and 98 %
#: of a quiz right (+-2 SD); it matters only where answers cannot place the mean (all right, all wrong).
MEAN_DIFFICULTY_SD = 2.0


@dataclass
class Calibration:
    """Difficulty per question (in question order), their mean, and how many answers each had."""

    difficulty: np.ndarray
    mean_difficulty: float
    answers: np.ndarray
    right: np.ndarray

    @classmethod
    def uncalibrated(cls, n_questions: int) -> Calibration:
        """Every question of difficulty 0: no past answers."""
        zeros = np.zeros(n_questions)
        return cls(zeros, 0.0, zeros.astype(int), zeros.astype(int))

    def to_json(self, ids: Sequence[str], source: str | None) -> dict:
        return {
            "source": source,
            "mean_difficulty": float(self.mean_difficulty),
            "ability_sd": ABILITY_SD,
            "difficulty_sd": DIFFICULTY_SD,
            "mean_difficulty_sd": MEAN_DIFFICULTY_SD,
            "questions": [
                {"id": qid, "difficulty": float(b), "answers": int(n), "right": int(r)}
                for qid, b, n, r in zip(ids, self.difficulty, self.answers, self.right)
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        questions = data["questions"]
        return cls(
            np.array([q["difficulty"] for q in questions], dtype=np.float64),
            float(data["mean_difficulty"]),
            np.array([q["answers"] for q in questions], dtype=int),
            np.array([q["right"] for q in questions], dtype=int),
        )


#: Newton stops after a step that moved no parameter more than this (logits; convergence is quadratic,
#: so the result is then far more precise), or after MAX_STEPS steps.
STEP_TOLERANCE = 1e-8
MAX_STEPS = 100


def fit_rasch(person, question, correct, n_questions: int, start: np.ndarray | None = None) -> Calibration:
    """Fit the model to answers given as parallel arrays (person index, question index, 0/1).

    ``person`` indices may be any integers (they are re-indexed); ``question``
    indices are in ``range(n_questions)``.  ``start``: difficulties to start
    from (a nearby fit); the optimum is the same from any start.
    """
    question = np.asarray(question, dtype=np.int64)
    correct = np.asarray(correct, dtype=np.float64)
    answers = np.bincount(question, minlength=n_questions)
    right = np.bincount(question, weights=correct, minlength=n_questions).astype(int)
    if len(correct) == 0:
        return Calibration(np.zeros(n_questions), 0.0, answers, right)
    _, person = np.unique(np.asarray(person), return_inverse=True)
    _, b = posterior_mode(person, question, correct, int(person.max()) + 1, n_questions, difficulty=start)
    return Calibration(b, prior_mean_difficulty(b), answers, right)


def prior_mean_difficulty(difficulty: np.ndarray) -> float:
    """``mu`` at the optimum, given the difficulties: their mean, shrunk towards 0 by its weak prior.

    Setting the derivative in ``mu`` to zero gives ``sum (b - mu) / s_b^2 = mu / s_mu^2``;
    a question nobody answered sits exactly there.
    """
    n = len(difficulty)
    return float(np.sum(difficulty) * MEAN_DIFFICULTY_SD**2 / (DIFFICULTY_SD**2 + n * MEAN_DIFFICULTY_SD**2))


def posterior_mode(person: np.ndarray, question: np.ndarray, correct: np.ndarray, n_persons: int,
                   n_questions: int, ability: np.ndarray | None = None, difficulty: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, b)`` maximising the posterior (module docstring) by Newton's method, from the given start.

    ``person`` in ``range(n_persons)``; a person with no answers keeps only
    the prior (theta 0), so a caller may drop a learner's answers and keep
    the index space.  Each step solves the questions x questions Schur
    complement of the Hessian (the abilities' block is diagonal), then
    backtracks until the posterior rises enough.
    """
    from scipy import sparse
    from scipy.linalg import cho_factor, cho_solve

    correct = np.asarray(correct, dtype=np.float64)
    if not len(correct):  # only the prior: its optimum is all zeros
        return np.zeros(n_persons), np.zeros(n_questions)
    theta = np.zeros(n_persons) if ability is None else np.array(ability, dtype=np.float64)
    b = np.zeros(n_questions) if difficulty is None else np.array(difficulty, dtype=np.float64)
    # b's prior with mu integrated out: sum (b - mean b)^2 / (2 s_b^2) + Q mean(b)^2 / (2 spread), its Hessian `prior`.
    spread = DIFFICULTY_SD**2 + n_questions * MEAN_DIFFICULTY_SD**2
    prior = (np.eye(n_questions) - 1.0 / n_questions) / DIFFICULTY_SD**2 + 1.0 / (n_questions * spread)

    def objective(theta, b):
        z = theta[person] - b[question]
        # -log sigma(z) for a right answer, -log(1 - sigma(z)) = -log sigma(z) + z for a wrong one.
        nll = np.logaddexp(0.0, -z).sum() + ((1.0 - correct) * z).sum()
        return (nll + (theta**2).sum() / (2 * ABILITY_SD**2) + ((b - b.mean()) ** 2).sum() / (2 * DIFFICULTY_SD**2)
                + n_questions * b.mean() ** 2 / (2 * spread))

    value = objective(theta, b)
    for _ in range(MAX_STEPS):
        p = 1.0 / (1.0 + np.exp(-(theta[person] - b[question])))
        residual, weight = correct - p, p * (1.0 - p)
        g_theta = -np.bincount(person, weights=residual, minlength=n_persons) + theta / ABILITY_SD**2
        g_b = (np.bincount(question, weights=residual, minlength=n_questions) + (b - b.mean()) / DIFFICULTY_SD**2
               + b.mean() / spread)
        h_theta = np.bincount(person, weights=weight, minlength=n_persons) + 1.0 / ABILITY_SD**2
        cross = sparse.csr_matrix((-weight, (person, question)), shape=(n_persons, n_questions))
        scaled = sparse.diags(1.0 / h_theta) @ cross
        schur = np.diag(np.bincount(question, weights=weight, minlength=n_questions)) + prior
        schur -= (cross.T @ scaled).toarray()
        d_b = cho_solve(cho_factor(schur), -g_b + scaled.T @ g_theta)
        d_theta = (-g_theta - cross @ d_b) / h_theta
        slope = g_theta @ d_theta + g_b @ d_b
        step = 1.0
        while True:
            candidate = objective(theta + step * d_theta, b + step * d_b)
            if candidate <= value + 1e-4 * step * slope or step < 1e-8:
                break
            step /= 2
        theta, b, value = theta + step * d_theta, b + step * d_b, candidate
        if step * max(np.abs(d_theta).max(), np.abs(d_b).max()) < STEP_TOLERANCE:
            break
    return theta, b
