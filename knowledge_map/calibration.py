"""Question difficulty from past learners' answers: a Rasch model with shrinkage.

Each person (a learner in one session) has an ability ``theta_p`` and each
question a difficulty ``b_q``; ``P(right) = sigma(theta_p - b_q)``.  The fit
maximises the joint posterior::

    sum log-likelihood  -  sum_p theta_p^2 / (2 s_theta^2)  -  sum_q (b_q - mu)^2 / (2 s_b^2)

with ``mu`` (the mean difficulty) free.  The difficulty prior shrinks a
question with few answers towards the mean (one answer moves it little,
hundreds decide it); the ability prior fixes the scale's origin at the
average person, so ``theta = 0`` is "an average learner".  A question
nobody answered gets ``mu``.  L-BFGS from zeros: deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

#: Prior standard deviations of abilities and of difficulties around their mean (logits).
ABILITY_SD = 1.0
DIFFICULTY_SD = 1.0


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


def fit_rasch(person, question, correct, n_questions: int) -> Calibration:
    """Fit the model to answers given as parallel arrays (person index, question index, 0/1).

    ``person`` indices may be any integers (they are re-indexed); ``question``
    indices are in ``range(n_questions)``.
    """
    question = np.asarray(question, dtype=np.int64)
    correct = np.asarray(correct, dtype=np.float64)
    answers = np.bincount(question, minlength=n_questions)
    right = np.bincount(question, weights=correct, minlength=n_questions).astype(int)
    if len(correct) == 0:
        return Calibration(np.zeros(n_questions), 0.0, answers, right)
    _, person = np.unique(np.asarray(person), return_inverse=True)
    n_p = int(person.max()) + 1

    def objective(params):
        theta, b, mu = params[:n_p], params[n_p : n_p + n_questions], params[-1]
        z = theta[person] - b[question]
        # log sigma(z) and log(1 - sigma(z)) without overflow
        log_lik = correct * -np.logaddexp(0.0, -z) + (1.0 - correct) * -np.logaddexp(0.0, z)
        residual = correct - 1.0 / (1.0 + np.exp(-z))
        value = -log_lik.sum() + (theta**2).sum() / (2 * ABILITY_SD**2) + ((b - mu) ** 2).sum() / (2 * DIFFICULTY_SD**2)
        g_theta = -np.bincount(person, weights=residual, minlength=n_p) + theta / ABILITY_SD**2
        g_b = np.bincount(question, weights=residual, minlength=n_questions) + (b - mu) / DIFFICULTY_SD**2
        g_mu = -(b - mu).sum() / DIFFICULTY_SD**2
        return value, np.concatenate([g_theta, g_b, [g_mu]])

    result = minimize(objective, np.zeros(n_p + n_questions + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "gtol": 1e-9})
    b = result.x[n_p : n_p + n_questions]
    return Calibration(b, float(result.x[-1]), answers, right)
