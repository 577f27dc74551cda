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
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from knowledge_map.calibration import posterior_mode, prior_mean_difficulty
from knowledge_map.grid import cell_index
from knowledge_map.heatmap import gaussian_taps
from knowledge_map.knowledge import ABILITY_PRECISION, NeighbourLists, Settings, local_ability, sigmoid
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


def answer_count_groups(counts) -> list[np.ndarray]:
    """Learners grouped so that, within a group, the most answers is at most about sqrt(2) x the fewest.

    :func:`loo_ability` pads each group to its largest answer count; one
    learner who answered the whole pool would otherwise pad every learner
    to that size (the cost grows as answers squared: 13 -> 300 answers is
    500x).  Buckets are half powers of two, so padding at most doubles the work.
    """
    counts = np.asarray(counts, dtype=np.int64)
    bucket = np.ceil(2.0 * np.log2(np.maximum(counts, 1))).astype(np.int64)
    return [np.flatnonzero(bucket == value) for value in np.unique(bucket)]


def loo_ability(weights, answered, correct, difficulty, precision: float, centre=None):
    """Leave-one-out local ability of each learner at each question they answered, in a session.

    weights: (Q, Q) kernel between the session's questions; answered, correct:
    (L, Q) 0/1; difficulty: (L, Q), the difficulties each learner's estimate
    uses.  Returns theta (L, Q): for learner l at a question q that l
    answered, from l's answers to every other question; 0 where l did not
    answer q (no prediction is made there).  Only answered pairs are solved:
    each learner's k answers against each other (L x k x k, padded within
    groups of learners with similar k, :func:`answer_count_groups`), not
    every question against every question (L x Q x Q), which the
    permutation test repeats a thousand times.
    ``centre`` (L, Q): the prior's mean for each held-out pair (the learner's
    overall ability without that answer, :func:`loo_overall`); 0 without it.
    """
    answered = np.asarray(answered)
    theta = np.zeros(answered.shape)
    for members in answer_count_groups(answered.sum(axis=1)):
        theta[members] = padded_loo_ability(
            weights, answered[members], np.asarray(correct)[members], np.asarray(difficulty)[members], precision,
            None if centre is None else np.asarray(centre, dtype=np.float64)[members],
        )
    return theta


def padded_loo_ability(weights, answered, correct, difficulty, precision: float, centre):
    """:func:`loo_ability` for one group of learners, each padded to the group's most answers."""
    n_learners = answered.shape[0]
    k = max(int(answered.sum(axis=1).max()), 1) if n_learners else 1
    # Each learner's answered questions first (stable: in question order), padded with unanswered ones.
    asked = np.argsort(-answered, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(answered, asked, axis=1) > 0
    w = weights[asked[:, :, None], asked[:, None, :]] * (valid[:, :, None] & valid[:, None, :]) * (1.0 - np.eye(k))
    c = np.take_along_axis(correct, asked, axis=1)
    b = np.take_along_axis(difficulty, asked, axis=1)
    mean = 0.0 if centre is None else np.take_along_axis(centre, asked, axis=1)
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


@dataclass
class PageView:
    """What the page reads its estimate from: the neighbour lists, the map and the heat raster's settings.

    ``readout[q]`` are the articles the heat raster averages at question q's
    place, and their weights (:func:`readout_articles`).
    """

    lists: NeighbourLists
    readout: list[tuple[np.ndarray, np.ndarray]]


def readout_articles(xy, question_xy, raster: int, bandwidth: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each question: (rows, weights) of the articles whose values the heat raster averages in the cell under it.

    The raster cell's value is ``sum_i k_i v_i / sum_i k_i`` over the
    articles within the Gaussian's reach, ``k_i`` the product of the
    separable taps at the cell offsets (:func:`knowledge_map.heatmap.heat_raster`);
    a question with no article in reach reads 0.5, as the page does there.
    """
    xy = np.asarray(xy, dtype=np.float64)
    gx, gy = cell_index(xy[:, 0], raster), cell_index(xy[:, 1], raster)
    taps = gaussian_taps(bandwidth)
    radius = len(taps) // 2
    out = []
    for qx, qy in zip(cell_index(np.asarray(question_xy)[:, 0], raster), cell_index(np.asarray(question_xy)[:, 1], raster)):
        near = np.flatnonzero((np.abs(gx - qx) <= radius) & (np.abs(gy - qy) <= radius))
        out.append((near, taps[gx[near] - qx + radius] * taps[gy[near] - qy + radius]))
    return out


def page_loo(page: PageView, questions: np.ndarray, answered, correct, difficulty, precision: float, centre,
             mean_difficulty: np.ndarray) -> np.ndarray:
    """What the page's readout says at each answered question's place from the learner's other answers, (L, Q).

    The article values the raster averages there are solved as
    :func:`knowledge_map.knowledge.state_from_lists` solves them (weights from
    the neighbour lists, prior centred at ``centre``), then averaged with the
    raster's weights; 0.5 where no article is in reach.  ``questions`` are the
    session's question indices (columns of ``answered``), ``mean_difficulty``
    each learner's mean difficulty (the page's ``sigma(theta - mean)``).
    """
    out = np.full(answered.shape, 0.5)
    for learner in range(answered.shape[0]):
        asked = np.flatnonzero(answered[learner])
        if not len(asked):
            continue
        pair_rows, pair_of, taps = [], [], []
        for k, q in enumerate(asked):
            rows, weights = page.readout[questions[q]]
            pair_rows.append(rows)
            pair_of.append(np.full(len(rows), k))
            taps.append(weights)
        rows, of, taps = np.concatenate(pair_rows), np.concatenate(pair_of), np.concatenate(taps)
        if not len(rows):
            continue
        w = list_weights(page.lists, questions[asked], rows) * (of[:, None] != np.arange(len(asked))[None, :])
        theta, _ = local_ability(w, correct[learner, asked], difficulty[learner, asked], precision, centre[learner, asked][of])
        values = sigmoid(theta - mean_difficulty[learner])
        sums = np.bincount(of, taps * values, minlength=len(asked))
        mass = np.bincount(of, taps, minlength=len(asked))
        out[learner, asked] = np.where(mass > 0, sums / np.where(mass > 0, mass, 1.0), 0.5)
    return out


def page_for_question(readout, mean_difficulty, difficulty) -> np.ndarray:
    """The page's readout as a prediction for one question: sigma(logit(readout) + mean b - b_q).

    The heat shows sigma(theta - mean b), what a learner knows of a question
    of average difficulty there; a question's own difficulty, which the map
    cannot show, then turns it into this question's chance.  On simulated
    learners it lifted the page's pooled AUC from `page_calibrated`'s to level
    with the estimate at the question (docs/knowledge.md).
    """
    readout = np.clip(np.asarray(readout, dtype=np.float64), 1e-9, 1 - 1e-9)
    return sigmoid(np.log(readout / (1 - readout)) + mean_difficulty - difficulty)


def list_weights(lists: NeighbourLists, answered, rows: np.ndarray) -> np.ndarray:
    """(len(rows) x len(answered)) weights of ``rows`` in each answered question's neighbour list (0 outside it).

    :meth:`NeighbourLists.dense` for the few articles a readout needs, not
    every article of the map (250,000 rows per learner at scale).
    """
    needed = np.unique(rows)
    out = np.zeros((len(needed), len(answered)))
    for k, q in enumerate(answered):
        listed, weights = lists.of(int(q))
        at = np.searchsorted(needed, listed)
        hit = (at < len(needed)) & (needed[np.minimum(at, len(needed) - 1)] == listed)
        out[at[hit], k] = weights[hit]
    return out[np.searchsorted(needed, rows)]


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
    (docs/knowledge.md).
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
             permutations: int = 1000, seed: int = 0, difficulty_without: dict | None = None,
             page: PageView | None = None) -> tuple[list[dict], dict]:
    """Leave-one-out predictions (rows for predictions.csv) and the summary (see the module docstring).

    ``question_weights`` is the (Q x Q) kernel between all questions;
    ``question_keys`` names each question in the output (its id or index).
    ``difficulty_without`` (from :func:`other_learners_difficulty`) may be
    passed to compare settings on the same answers without refitting.
    With ``page``, also what the page's heat readout says at the held-out
    question's place (``page``, ``page_calibrated``, :func:`page_loo`), and
    that readout with the question's own difficulty (``page_question``,
    :func:`page_for_question`).
    """
    n_questions = len(question_keys)
    if difficulty_without is None:
        difficulty_without = other_learners_difficulty(responses, n_questions)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    sessions = {}
    pooled: dict[str, list] = {"correct": []}
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
        if page is not None:
            # The page's sigma(theta - mean difficulty), with the mean as calibration.json gives the page.
            mean_b = np.array([prior_mean_difficulty(difficulty_without[learner]) for learner in learners])
            scores["page"] = page_loo(page, questions, answered, correct, zeros, settings.precision, overall,
                                      np.zeros(len(learners)))[l_at, q_at]
            scores["page_calibrated"] = page_loo(page, questions, answered, correct, b, settings.precision,
                                                 overall_cal, mean_b)[l_at, q_at]
            scores["page_question"] = page_for_question(scores["page_calibrated"], mean_b[l_at], b[l_at, q_at])
        for i, (li, q, c) in enumerate(zip(l_at, q_at, outcome)):
            rows.append({"learner": learners[li], "session": session, "question": question_keys[questions[q]],
                         "correct": int(c), **{key: float(scores[key][i]) for key in PREDICTION_COLUMNS if key in scores}})
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
            pooled.setdefault(key, []).extend(scores[key].tolist())
    summary = {
        "method": "leave-one-out within learner and session; calibrated difficulty from the other learners only",
        "settings": {"kernel": settings.kernel, "temperature": settings.temperature, "unit": settings.unit,
                     "sigma": settings.sigma,
                     "prior_weight": settings.prior_weight},
        "permutations": permutations,
        "answers": len(responses),
        "learners": int(len(np.unique(responses.learner.astype(str)))),
        "sessions": sessions,
        "all_sessions_pooled_auc": {key: auc(pooled[key], pooled["correct"]) for key in pooled if key != "correct"},
        "all_sessions_pooled_log_loss": {key: probability_loss(pooled[key], pooled["correct"], log_loss)
                                         for key in pooled if key != "correct"},
        "all_sessions_pooled_brier": {key: probability_loss(pooled[key], pooled["correct"], brier_score_loss)
                                      for key in pooled if key != "correct"},
    }
    return rows, summary


def probability_loss(scores, labels, loss) -> float | None:
    """A proper scoring rule (log loss, Brier) of probabilities; None without answers.

    AUC only ranks; these also judge the numbers, which the page shows
    (an over-confident 0.99 for a question the learner misses costs here).
    """
    if not len(labels):
        return None
    return float(loss(np.asarray(labels, dtype=int), np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6),
                      **({"labels": [0, 1]} if loss is log_loss else {})))


def session_summary(learners, outcome, scores: dict, null: dict, permutations: int) -> dict:
    """AUCs (pooled and within learner) and the permutation test of one session."""
    out = {
        "learners": int(len(np.unique(learners))),
        "answers": int(len(outcome)),
        "proportion_right": float(np.mean(outcome)) if len(outcome) else None,
        "auc_pooled": {key: auc(value, outcome) for key, value in scores.items()},
        "log_loss": {key: probability_loss(value, outcome, log_loss) for key, value in scores.items()},
        "brier": {key: probability_loss(value, outcome, brier_score_loss) for key, value in scores.items()},
        "auc_within_learner": {key: within_learner_auc(value, outcome, learners) for key, value in scores.items()},
        # Within-learner AUC averages these learners alone, unweighted: a learner with one right and one wrong
        # answer counts as much as one with forty.
        "learners_in_within_learner_auc": int(sum(
            len(np.unique(outcome[learners == learner])) == 2 for learner in np.unique(learners))),
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


#: The predictions written per answer, in predictions.csv's column order (page ones only when the page is given).
PREDICTION_COLUMNS = ("estimate", "estimate_calibrated", "page", "page_calibrated", "page_question")


def predictions_csv(rows: list[dict]) -> str:
    """predictions.csv text: learner,session,question,correct, then :data:`PREDICTION_COLUMNS` present in the rows.

    The text fields (the user's learner, session and question ids) pass
    :func:`knowledge_map.textsafety.spreadsheet_safe`: the file is meant to
    be opened in a spreadsheet, and an id must never run there as a formula.
    Lines end in CRLF (RFC 4180), so an id holding a line break is quoted
    rather than splitting its row.
    """
    from knowledge_map.textsafety import spreadsheet_safe

    buffer = io.StringIO()
    numbers = [key for key in PREDICTION_COLUMNS if rows and key in rows[0]]
    fields = ["learner", "session", "question", "correct", *numbers]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        text = {key: spreadsheet_safe(str(row[key])) for key in ("learner", "session", "question")}
        writer.writerow({**row, **text, **{key: f"{row[key]:.6f}" for key in numbers}})
    return buffer.getvalue()
