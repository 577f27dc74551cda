"""Does the map predict what a learner gets right?  Leave-one-out against real answers.

Every answer in a responses file is predicted from the same learner's other
answers in the same session, as the page would estimate it:

``estimate``
    the local ability at the held-out question from the other answers,
    weighted by the kernel between questions (:mod:`knowledge_map.knowledge`),
    without difficulties: ``sigma(theta)``.
``estimate_calibrated``
    the same with difficulties calibrated from the OTHER learners only
    (:mod:`knowledge_map.calibration`, refitted once per held-out learner):
    ``sigma(theta - b_q)``.

Scored with the AUC (the chance that a right answer gets a higher estimate
than a wrong one; ties count one half), per session pooled over learners and
within learner (the mean of per-learner AUCs, over learners with both right
and wrong answers).  Both estimates centre their prior at the learner's
overall ability from the other answers (:func:`loo_overall`).  Three
baselines say what the map adds: the learner's own proportion right on the
other answers (``(right + 1) / (n + 2)``), the difficulty alone
(``sigma(-b_q)``), and ability and difficulty without the map
(``sigma(a - b_q)``, the Rasch model: what the calibrated estimate must beat
for the map to mean something).  A permutation null shuffles which
question sits where (the kernel matrix's rows and columns together, keeping
the answers and difficulties) ``permutations`` times; ``p`` is
``(1 + #{null AUC >= observed}) / (1 + permutations)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from knowledge_map.calibration import posterior_mode
from knowledge_map.knowledge import ABILITY_PRECISION, Settings, local_ability, sigmoid
from knowledge_map.responses import Responses


def auc(scores, labels) -> float | None:
    """Area under the ROC curve (sklearn's; ties count one half); None without both classes."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def within_learner_auc(scores, labels, learners) -> float | None:
    """Mean per-learner AUC over learners with both right and wrong answers."""
    values = []
    learners = np.asarray(learners)
    for learner in np.unique(learners):
        mask = learners == learner
        value = auc(np.asarray(scores)[mask], np.asarray(labels)[mask])
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else None


def loo_ability(weights, answered, correct, difficulty, precision: float, centre=None):
    """Leave-one-out local ability of each learner at each question they answered, in a session.

    weights: (Q, Q) kernel between the session's questions; answered, correct:
    (L, Q) 0/1; difficulty: (L, Q), the difficulties each learner's estimate
    uses.  Returns theta (L, Q): for learner l at a question q that l
    answered, from l's answers to every other question; 0 where l did not
    answer q (no prediction is made there).  Only answered pairs are solved:
    each learner's k answers against each other (L x k x k, padded to the
    most answers any learner gave), not every question against every
    question (L x Q x Q), which the permutation test repeats a thousand times.
    ``centre`` (L, Q): the prior's mean for each held-out pair (the learner's
    overall ability without that answer, :func:`loo_overall`); 0 without it.
    """
    n_learners = answered.shape[0]
    k = max(int(answered.sum(axis=1).max()), 1) if n_learners else 1
    # Each learner's answered questions first (stable: in question order), padded with unanswered ones.
    asked = np.argsort(-answered, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(answered, asked, axis=1) > 0
    w = weights[asked[:, :, None], asked[:, None, :]] * (valid[:, :, None] & valid[:, None, :]) * (1.0 - np.eye(k))
    c = np.take_along_axis(correct, asked, axis=1)
    b = np.take_along_axis(difficulty, asked, axis=1)
    mean = 0.0 if centre is None else np.take_along_axis(np.asarray(centre, dtype=np.float64), asked, axis=1)
    theta_k, _ = local_ability(w, c[:, None, :], b[:, None, :], precision, mean)
    theta = np.zeros(answered.shape)
    rows = np.broadcast_to(np.arange(n_learners)[:, None], asked.shape)
    theta[rows[valid], asked[valid]] = theta_k[valid]
    return theta


def loo_overall(answered, correct, difficulty):
    """Each learner's overall ability from every answer in the session but the held-out one, (L, Q).

    :func:`knowledge_map.knowledge.overall_ability` leave-one-out: the same
    solve with every other answer at weight 1 and the ability prior.
    """
    everyone = np.ones((answered.shape[1], answered.shape[1]))
    return loo_ability(everyone, answered, correct, difficulty, ABILITY_PRECISION)


def session_matrices(responses: Responses, session) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(learners, questions, answered (L x Q), correct (L x Q)) of one session."""
    mask = responses.session == session
    learners, l_idx = np.unique(responses.learner[mask].astype(str), return_inverse=True)
    questions, q_idx = np.unique(responses.question[mask], return_inverse=True)
    answered = np.zeros((len(learners), len(questions)))
    correct = np.zeros_like(answered)
    answered[l_idx, q_idx] = 1.0
    correct[l_idx, q_idx] = responses.correct[mask]
    return learners, questions, answered, correct


def other_learners_difficulty(responses: Responses, n_questions: int) -> dict[str, np.ndarray]:
    """Difficulties fitted without each learner, by learner.

    Each refit starts from the fit to everyone, a few Newton steps away
    (:func:`knowledge_map.calibration.posterior_mode`), in the same person
    index space (the learner's own persons, left without answers, fall back
    to the prior): 400 learners took 34 s with L-BFGS from zeros
    (README, "Validating a map on your learners").
    """
    learners = responses.learner.astype(str)
    person = responses.person()
    n_persons = int(person.max()) + 1 if len(person) else 0
    question, correct = responses.question, responses.correct
    if not n_persons:
        return {}
    theta, b = posterior_mode(person, question, correct, n_persons, n_questions)
    out = {}
    for learner in np.unique(learners):
        keep = learners != learner
        out[learner] = posterior_mode(person[keep], question[keep], correct[keep], n_persons, n_questions,
                                      ability=theta, difficulty=b)[1]
    return out


def validate(responses: Responses, question_weights: np.ndarray, settings: Settings, question_keys: Sequence[str],
             permutations: int = 1000, seed: int = 0, difficulty_without: dict | None = None) -> tuple[list[dict], dict]:
    """Leave-one-out predictions (rows for predictions.csv) and the summary (see the module docstring).

    ``question_weights`` is the (Q x Q) kernel between all questions;
    ``question_keys`` names each question in the output (its id or index).
    ``difficulty_without`` (from :func:`other_learners_difficulty`) may be
    passed to compare settings on the same answers without refitting.
    """
    n_questions = len(question_keys)
    if difficulty_without is None:
        difficulty_without = other_learners_difficulty(responses, n_questions)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    sessions = {}
    pooled = {"correct": [], "estimate": [], "estimate_calibrated": [], "own_proportion": [], "difficulty_only": [],
              "ability_difficulty": []}
    for session in sorted(np.unique(responses.session.astype(str))):
        learners, questions, answered, correct = session_matrices(responses, session)
        weights = question_weights[np.ix_(questions, questions)]
        b = np.stack([difficulty_without[learner][questions] for learner in learners])
        zeros = np.zeros_like(b)
        overall, overall_cal = loo_overall(answered, correct, zeros), loo_overall(answered, correct, b)
        theta = loo_ability(weights, answered, correct, zeros, settings.precision, overall)
        theta_cal = loo_ability(weights, answered, correct, b, settings.precision, overall_cal)
        estimate, calibrated = sigmoid(theta), sigmoid(theta_cal - b)
        others = answered.sum(axis=1, keepdims=True) - answered
        own = ((correct.sum(axis=1, keepdims=True) - correct) + 1.0) / (others + 2.0)
        difficulty_only = sigmoid(-b)
        l_at, q_at = np.nonzero(answered)
        outcome = correct[l_at, q_at]
        scores = {
            "estimate": estimate[l_at, q_at],
            "estimate_calibrated": calibrated[l_at, q_at],
            "own_proportion": own[l_at, q_at],
            "difficulty_only": difficulty_only[l_at, q_at],
            "ability_difficulty": sigmoid(overall_cal - b)[l_at, q_at],
        }
        for li, q, c, e, ec in zip(l_at, q_at, outcome, scores["estimate"], scores["estimate_calibrated"]):
            rows.append({"learner": learners[li], "session": session, "question": question_keys[questions[q]],
                         "correct": int(c), "estimate": float(e), "estimate_calibrated": float(ec)})
        null = {"estimate": [], "estimate_calibrated": []}
        for _ in range(permutations):
            order = rng.permutation(len(questions))
            shuffled = weights[np.ix_(order, order)]
            theta_null = loo_ability(shuffled, answered, correct, zeros, settings.precision, overall)
            null["estimate"].append(auc(sigmoid(theta_null)[l_at, q_at], outcome))
            theta_null = loo_ability(shuffled, answered, correct, b, settings.precision, overall_cal)
            null["estimate_calibrated"].append(auc(sigmoid(theta_null - b)[l_at, q_at], outcome))
        sessions[session] = session_summary(learners[l_at], outcome, scores, null, permutations)
        pooled["correct"].extend(outcome.tolist())
        for key in scores:
            pooled[key].extend(scores[key].tolist())
    summary = {
        "method": "leave-one-out within learner and session; calibrated difficulty from the other learners only",
        "settings": {"kernel": settings.kernel, "temperature": settings.temperature, "sigma": settings.sigma,
                     "prior_weight": settings.prior_weight},
        "permutations": permutations,
        "answers": len(responses),
        "learners": int(len(np.unique(responses.learner.astype(str)))),
        "sessions": sessions,
        "all_sessions_pooled_auc": {key: auc(pooled[key], pooled["correct"]) for key in pooled if key != "correct"},
    }
    return rows, summary


def session_summary(learners, outcome, scores: dict, null: dict, permutations: int) -> dict:
    """AUCs (pooled and within learner) and the permutation test of one session."""
    out = {
        "learners": int(len(np.unique(learners))),
        "answers": int(len(outcome)),
        "proportion_right": float(np.mean(outcome)) if len(outcome) else None,
        "auc_pooled": {key: auc(value, outcome) for key, value in scores.items()},
        "auc_within_learner": {key: within_learner_auc(value, outcome, learners) for key, value in scores.items()},
        "permutation": {},
    }
    for key, values in null.items():
        observed = out["auc_pooled"][key]
        values = np.array([v for v in values if v is not None], dtype=np.float64)
        if observed is None or not len(values):
            out["permutation"][key] = None
            continue
        out["permutation"][key] = {
            "observed": observed,
            "null_mean": float(values.mean()),
            "null_sd": float(values.std()),
            "p": float((1 + (values >= observed).sum()) / (1 + permutations)),
        }
    return out


def predictions_csv(rows: list[dict]) -> str:
    """predictions.csv text: learner,session,question,correct,estimate,estimate_calibrated.

    The text fields (the user's learner, session and question ids) pass
    :func:`knowledge_map.textsafety.spreadsheet_safe`: the file is meant to
    be opened in a spreadsheet, and an id must never run there as a formula.
    Lines end in CRLF (RFC 4180), so an id holding a line break is quoted
    rather than splitting its row.
    """
    from knowledge_map.textsafety import spreadsheet_safe

    buffer = io.StringIO()
    fields = ["learner", "session", "question", "correct", "estimate", "estimate_calibrated"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        text = {key: spreadsheet_safe(str(row[key])) for key in ("learner", "session", "question")}
        writer.writerow({**row, **text, "estimate": f"{row['estimate']:.6f}",
                         "estimate_calibrated": f"{row['estimate_calibrated']:.6f}"})
    return buffer.getvalue()
