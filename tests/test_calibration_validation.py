"""Past answers: the responses reader, difficulty calibration and the leave-one-out validation."""

from __future__ import annotations

import csv
import io
import logging

import numpy as np
import pytest

from knowledge_map.calibration import Calibration, fit_rasch
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.knowledge import THETA_MAX, Settings, embedding_kernel, sigmoid
from knowledge_map.responses import Responses, read_responses
from knowledge_map.validation import (
    answer_count_groups,
    auc,
    loo_ability,
    predictions_csv,
    validate,
    within_learner_auc,
)

QUESTIONS = [{"id": "q-a"}, {"id": "q-b"}, {"id": None}]


def write(tmp_path, text, name="responses.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_responses_resolve_ids_and_indices_and_keep_the_first_repeat(tmp_path, caplog):
    """A question is named by its id, or by its index when it has none; a repeated answer keeps the first,
    and the repeats left out (and how many disagreed) are a warning."""
    path = write(tmp_path, "learner,session,question,correct,extra\nann,1,q-b,1,x\nann,1,2,false,\nann,1,q-b,0,\n"
                           "bob,1,q-a,yes,\nann,1,q-b,1,\n")
    with caplog.at_level(logging.WARNING, logger="knowledge_map"):
        answers = read_responses(path, QUESTIONS)
    assert answers.question.tolist() == [1, 2, 0]
    assert answers.correct.tolist() == [1, 0, 1]
    assert len(set(answers.person())) == 2
    (record,) = caplog.records
    assert "2 repeated answer(s)" in record.getMessage() and "1 of them different" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="knowledge_map"):
        read_responses(write(tmp_path, "learner,session,question,correct\nann,1,q-b,1\nann,2,q-b,0\n"), QUESTIONS)
    assert not caplog.records  # a second session is not a repeat


def test_answers_that_never_differ_give_finite_difficulties_and_a_warning(tmp_path, caplog):
    """All right (or one answer): the mean difficulty's weak prior keeps the fit finite (it ran off to -37 logits,
    and the page showed "known" everywhere); the file gets a warning."""
    text = "learner,session,question,correct\nann,1,q-a,1\nbob,1,q-a,1\nbob,1,q-b,1\ncat,1,2,1\n"
    with caplog.at_level(logging.WARNING, logger="knowledge_map"):
        answers = read_responses(write(tmp_path, text), QUESTIONS)
    assert "all 4 answers are right" in caplog.records[0].getMessage()
    right = fit_rasch(answers.person(), answers.question, answers.correct, 3)
    wrong = fit_rasch(answers.person(), answers.question, 1 - answers.correct, 3)
    assert -4 < right.difficulty.min() and right.difficulty.max() < 0 and right.mean_difficulty < 0
    np.testing.assert_allclose(wrong.difficulty, -right.difficulty, atol=1e-9)  # the model's symmetry
    single = fit_rasch([0], [0], [1], 3)
    assert np.isfinite(single.difficulty).all() and abs(single.difficulty).max() < 2
    # The page stays responsive: a learner with one wrong answer is not "known" at an average question.
    assert sigmoid(-THETA_MAX - right.mean_difficulty) < 0.01


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learner,session,question\nann,1,q-a\n", "line 1: missing column(s) correct"),
        ("learner,session,question,correct\nann,1,q-z,1\n", "line 2: field 'question' 'q-z' is not a question id"),
        ("learner,session,question,correct\nann,1,q-a,1\nann,1,q-b,maybe\n", "line 3: field 'correct' must be 1 or 0"),
        ("learner,session,question,correct\n,1,q-a,1\n", "line 2: field 'learner' is empty"),
        ("learner,session,question,correct\n", "no answers"),
        # what an editor shows: blank lines and a cell spanning two lines count
        ("learner,session,question,correct\n\nann,1,q-a,1\n\nann,1,q-z,1\n", "line 5: field 'question' 'q-z'"),
        ('learner,session,question,correct,note\nann,1,q-a,1,"two\nlines"\nbob,1,q-z,1,\n', "line 4: field 'question'"),
        ("learner,session,question,correct\nann,1\n", "line 2: has 2 field(s), but the header puts 'correct' in field 4"),
        ("learner;session;question;correct\nann;1;q-a;1\n", "separated by commas, found 'learner;session;question;correct'"),
        ("learner,session,question,correct\nann\x07,1,q-a,1\n", "line 2: field 'learner' contains a control character (U+0007)"),
        # A stray quote swallowed the rest of the file into one cell; the error named a later line.
        ('learner,session,question,correct\nann,1,q-a,1\nbob,"1,q-b,1\ncat,1,q-a,0\n',
         "line 3: a quote opened in this row is not closed (its cell runs on to line 4)"),
        ("learner,session,question,correct,correct\nann,1,q-a,1,0\n", "line 1: column 'correct' appears twice"),
    ],
)
def test_bad_responses_are_one_line_errors_naming_file_line_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(KnowledgeMapError) as error:
        read_responses(path, QUESTIONS)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_columns_the_workflow_does_not_read_may_be_left_off_the_end_of_a_row(tmp_path):
    path = write(tmp_path, "learner,session,question,correct,note\nann,1,q-a,1\nbob,1,q-b,0,late\n")
    assert read_responses(path, QUESTIONS).correct.tolist() == [1, 0]


def test_excel_csv_utf8_with_a_byte_order_mark_and_cleared_rows_reads_as_written(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark and keeps ",,," where rows were cleared."""
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbflearner,session,question,correct\r\nann,1,q-a,1\r\n,,,\r\nbob,1,q-b,0\r\n")
    answers = read_responses(path, QUESTIONS)
    assert answers.learner.tolist() == ["ann", "bob"] and answers.question.tolist() == [0, 1]


def test_a_windows_code_page_file_is_refused_at_its_real_line_and_byte(tmp_path):
    """A cp1252 "José" deep in a file: the offset is the file's, not the decoder buffer's (it was 4351 for 28927)."""
    path = tmp_path / "r.csv"
    head = b"learner,session,question,correct\n" + b"ann,1,q-a,1\n" * 3000
    path.write_bytes(head + "jos\u00e9,1,q-b,1\n".encode("cp1252"))
    with pytest.raises(KnowledgeMapError) as error:
        read_responses(path, QUESTIONS)
    assert f"{path}: line 3002: not valid UTF-8 at byte {len(head) + 3} (save the file as UTF-8)" == str(error.value)


def test_learner_and_session_are_one_pair_whatever_characters_they_hold():
    """Two different (learner, session) pairs are two people (a joined string could make them one)."""
    answers = Responses(np.array(["a b", "a"], dtype=object), np.array(["", "b "], dtype=object),
                        np.array([0, 0]), np.array([1, 0]))
    assert sorted(answers.person().tolist()) == [0, 1]


def test_a_name_typed_on_a_mac_and_elsewhere_is_one_learner(tmp_path):
    """macOS exports decomposed (NFD) "José", Windows composed (NFC): the same person, whose answers stay together."""
    nfd, nfc = "Jose\u0301", "Jos\u00e9"
    answers = read_responses(write(tmp_path, f"learner,session,question,correct\n{nfd},1,q-a,1\n{nfc},1,q-b,0\n"),
                             QUESTIONS)
    assert set(answers.learner) == {nfc} and len(set(answers.person())) == 1


def test_responses_that_are_not_utf8_or_missing_are_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"learner,session,question,correct\n\xff\xfe,1,q-a,1\n")
    with pytest.raises(KnowledgeMapError, match="not valid UTF-8"):
        read_responses(path, QUESTIONS)
    with pytest.raises(KnowledgeMapError, match="not found"):
        read_responses(tmp_path / "missing.csv", QUESTIONS)
    with pytest.raises(KnowledgeMapError, match=r"cannot read the responses file \(Is a directory\)"):
        read_responses(tmp_path, QUESTIONS)


def simulated(n_learners=80, n_questions=12, seed=0):
    rng = np.random.default_rng(seed)
    b = rng.normal(0, 1.2, n_questions)
    theta = rng.normal(0, 1, n_learners)
    correct = (rng.random((n_learners, n_questions)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(int)
    person = np.repeat(np.arange(n_learners), n_questions)
    return person, np.tile(np.arange(n_questions), n_learners), correct.ravel(), b


def test_rasch_calibration_recovers_the_order_of_difficulty():
    person, question, correct, b = simulated()
    calibration = fit_rasch(person, question, correct, len(b))
    assert np.corrcoef(calibration.difficulty, b)[0, 1] > 0.9
    assert calibration.answers.tolist() == [80] * 12


def test_a_question_with_few_answers_is_shrunk_towards_the_mean():
    """All-right with 2 answers is pulled to the mean far more than all-right with 60."""
    person, question, correct, _ = simulated(60, 4, seed=1)
    keep = ~((question == 3) & (person >= 2))  # question 3: answered by two learners only
    correct = np.where(question >= 2, 1, correct)  # questions 2 and 3: everyone right
    calibration = fit_rasch(person[keep], question[keep], correct[keep], 5)
    mean = calibration.mean_difficulty
    assert calibration.difficulty[2] < calibration.difficulty[3] < mean
    assert calibration.difficulty[4] == pytest.approx(mean, abs=1e-4)  # never answered: the mean
    assert mean - calibration.difficulty[3] < 0.5 * (mean - calibration.difficulty[2])


def lbfgs_rasch(person, question, correct, n_questions):
    """The posterior of the module docstring, mu a parameter, maximised by scipy's L-BFGS: an independent optimiser."""
    from scipy.optimize import minimize

    from knowledge_map.calibration import ABILITY_SD, DIFFICULTY_SD, MEAN_DIFFICULTY_SD

    _, person = np.unique(person, return_inverse=True)
    n_p = person.max() + 1

    def objective(x):
        theta, b, mu = x[:n_p], x[n_p:-1], x[-1]
        z = theta[person] - b[question]
        nll = (correct * np.logaddexp(0, -z) + (1 - correct) * np.logaddexp(0, z)).sum()
        return (nll + (theta**2).sum() / (2 * ABILITY_SD**2) + ((b - mu) ** 2).sum() / (2 * DIFFICULTY_SD**2)
                + mu**2 / (2 * MEAN_DIFFICULTY_SD**2))

    x = minimize(objective, np.zeros(n_p + n_questions + 1), method="L-BFGS-B",
                 options={"maxiter": 20000, "gtol": 1e-10, "ftol": 1e-15, "maxfun": 10**6}).x
    return x[n_p:-1], x[-1]


@pytest.mark.parametrize("seed", [0, 3])
def test_newton_finds_the_posteriors_optimum_from_any_start(seed):
    """Same optimum as an independent optimiser of the same posterior, from zeros and from a far start."""
    person, question, correct, b = simulated(50, 9, seed=seed)
    keep = np.random.default_rng(seed).random(len(person)) < 0.7  # an incomplete design
    person, question, correct = person[keep], question[keep], correct[keep]
    expected_b, expected_mu = lbfgs_rasch(person, question, correct.astype(float), 10)
    for start in (None, np.linspace(-5, 5, 10)):
        fit = fit_rasch(person, question, correct, 10, start=start)
        np.testing.assert_allclose(fit.difficulty[:9], expected_b[:9], atol=1e-4)
        assert fit.mean_difficulty == pytest.approx(expected_mu, abs=1e-4)
        # Question 9 was never answered: exactly at mu.
        assert fit.difficulty[9] == pytest.approx(fit.mean_difficulty, abs=1e-9)
    again = fit_rasch(person, question, correct, 10)
    assert again.difficulty.tobytes() == fit_rasch(person, question, correct, 10).difficulty.tobytes()


def test_one_learner_leaves_nothing_to_fit_without_them_and_gets_the_prior():
    """Without the only learner no answer is left: their refit is the prior's optimum (all zero), not a singular
    Newton system's traceback."""
    from knowledge_map.validation import other_learners_difficulty

    responses = Responses(np.array(["ann"] * 40), np.array(["s"] * 40), np.arange(40), np.arange(40) % 2 == 0)
    without = other_learners_difficulty(responses, 40)
    assert list(without) == ["ann"] and not without["ann"].any()


def test_uncalibrated_is_all_zero_and_round_trips_json():
    calibration = Calibration.uncalibrated(3)
    again = Calibration.from_json(calibration.to_json(["a", "b", "c"], None))
    np.testing.assert_array_equal(again.difficulty, 0.0)
    assert again.mean_difficulty == 0.0


def test_the_summary_says_how_many_learners_the_within_learner_auc_averages():
    """Only learners with both a right and a wrong answer have a within-learner AUC; the summary counts them."""
    from knowledge_map.validation import session_summary

    learners, outcome = np.array(["a", "a", "b", "b", "c"]), np.array([1, 0, 1, 1, 0])
    summary = session_summary(learners, outcome, {"x": np.array([0.9, 0.1, 0.5, 0.5, 0.3])}, {}, 0)
    assert summary["learners"] == 3 and summary["learners_in_within_learner_auc"] == 1
    assert summary["auc_within_learner"]["x"] == 1.0


def test_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(3)
    scores, labels = rng.integers(0, 5, 40).astype(float), rng.integers(0, 2, 40).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(scores, labels) == pytest.approx(expected)
    assert auc([0.1, 0.2], [1, 1]) is None
    assert within_learner_auc([0.9, 0.1, 0.2, 0.8], [1, 0, 1, 1], ["a", "a", "b", "b"]) == 1.0


def test_leave_one_out_never_sees_the_held_out_answer():
    """Flipping one answer changes every other estimate of that learner but not its own."""
    rng = np.random.default_rng(4)
    weights = embedding_kernel(rng.uniform(0.2, 0.9, size=(6, 6)), 0.1)
    answered = np.ones((1, 6))
    correct = rng.integers(0, 2, size=(1, 6)).astype(float)
    flipped = correct.copy()
    flipped[0, 2] = 1 - flipped[0, 2]
    a = loo_ability(weights, answered, correct, np.zeros((1, 6)), 0.01)
    b = loo_ability(weights, answered, flipped, np.zeros((1, 6)), 0.01)
    assert a[0, 2] == b[0, 2]
    assert (a[0, [0, 1, 3, 4, 5]] != b[0, [0, 1, 3, 4, 5]]).all()


def test_leave_one_out_on_answered_pairs_equals_the_full_computation():
    """Learners answering different subsets: solving only answered pairs gives what every question against
    every question gives (the definition: local_ability over all Q targets, the target's own answer removed)."""
    from knowledge_map.knowledge import local_ability

    rng = np.random.default_rng(6)
    n_l, n_q = 7, 9
    weights = embedding_kernel(rng.uniform(0.2, 0.95, size=(n_q, n_q)), 0.1)
    answered = (rng.random((n_l, n_q)) < 0.6).astype(float)
    answered[0] = 0  # a learner who answered nothing
    answered[1] = 0
    answered[1, 4] = 1  # one answer: nothing left to predict it from
    correct = (rng.random((n_l, n_q)) < 0.5) * answered
    difficulty = rng.normal(size=(n_l, n_q))
    full_w = weights[None, :, :] * answered[:, None, :] * (1.0 - np.eye(n_q))[None]
    full, _ = local_ability(full_w, correct[:, None, :], difficulty[:, None, :], 0.01)
    packed = loo_ability(weights, answered, correct, difficulty, 0.01)
    at = answered > 0
    np.testing.assert_allclose(packed[at], full[at], atol=1e-12)
    assert (packed[~at] == 0).all() and packed[1, 4] == 0.0


def test_one_learner_with_many_answers_pads_only_their_own_group():
    """A learner who answered the whole pool (300) must not pad everyone else's solve to 300 x 300 (500x the
    work): groups keep their most answers within sqrt(2) of their fewest, and the result is the same as each
    learner solved alone."""
    counts = np.array([13] * 50 + [12, 1, 0, 300, 299, 150])
    groups = answer_count_groups(counts)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(counts)))
    for members in groups:
        assert counts[members].max() <= np.sqrt(2) * max(counts[members].min(), 1)
    rng = np.random.default_rng(8)
    n_q = 40
    weights = embedding_kernel(rng.uniform(0.2, 0.95, size=(n_q, n_q)), 0.1)
    answered = np.zeros((5, n_q))
    for learner, k in enumerate([3, 4, 9, 17, 40]):
        answered[learner, rng.choice(n_q, k, replace=False)] = 1
    correct = (rng.random((5, n_q)) < 0.6) * answered
    difficulty, centre = rng.normal(size=(5, n_q)), rng.normal(size=(5, n_q))
    together = loo_ability(weights, answered, correct, difficulty, 0.01, centre)
    for learner in range(5):
        alone = loo_ability(weights, answered[[learner]], correct[[learner]], difficulty[[learner]], 0.01,
                            centre[[learner]])
        np.testing.assert_allclose(together[learner], alone[0], atol=1e-12)


def clustered_responses(n_learners=30, seed=5):
    """Two groups of 4 questions; each learner knows one group (p 0.9) and not the other (p 0.2)."""
    rng = np.random.default_rng(seed)
    learners, questions, correct = [], [], []
    for learner in range(n_learners):
        knows = learner % 2
        for q in range(8):
            p = 0.9 if (q < 4) == bool(knows) else 0.2
            learners.append(f"L{learner}")
            questions.append(q)
            correct.append(int(rng.random() < p))
    n = len(correct)
    return Responses(np.array(learners, dtype=object), np.array(["s1"] * n, dtype=object), np.array(questions), np.array(correct))


def test_validation_finds_structure_that_the_kernel_sees_and_the_null_does_not():
    """Questions similar within a group: the estimate beats chance and the permutation null (p small)."""
    similarity = np.full((8, 8), 0.2)
    similarity[:4, :4] = similarity[4:, 4:] = 0.8
    settings = Settings(temperature=0.1, prior_weight=0.003)
    responses = clustered_responses()
    rows, summary = validate(responses, embedding_kernel(similarity, 0.1), settings, [str(i) for i in range(8)],
                             permutations=200, seed=0)
    session = summary["sessions"]["s1"]
    assert len(rows) == 240 and session["answers"] == 240 and session["learners"] == 30
    assert session["auc_pooled"]["estimate"] > 0.8
    assert session["permutation"]["estimate"]["p"] < 0.05
    assert session["permutation"]["estimate"]["null_mean"] < 0.7
    text = predictions_csv(rows)
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    assert header == ["learner", "session", "question", "correct", "estimate", "estimate_calibrated"]
    assert first[1] == "s1" and 0.0 < float(first[4]) < 1.0


def test_predictions_csv_never_hands_a_spreadsheet_a_formula():
    """Ids from the user's response file that a spreadsheet would run (=, +, -, @, tab, CR) get an apostrophe."""
    row = {"correct": 1, "estimate": 0.5, "estimate_calibrated": 0.25}
    hostile = ['=HYPERLINK("http://x","y")', "+1+2", "-3", "@SUM(A1)", "\tx", "\r=1", "a\nb"]
    rows = [{**row, "learner": h, "session": h, "question": "q"} for h in hostile]
    rows.append({**row, "learner": "learner 7", "session": "s1", "question": "=q"})
    parsed = list(csv.reader(io.StringIO(predictions_csv(rows), newline="")))[1:]
    assert len(parsed) == len(rows)  # a line break inside an id is quoted, not a new row
    for line, value in zip(parsed, hostile):
        assert line[0] == line[1] == (value if value == "a\nb" else "'" + value)
    assert parsed[-1][:3] == ["learner 7", "s1", "'=q"]
    assert parsed[-1][3:] == ["1", "0.500000", "0.250000"]


def test_the_page_prediction_is_the_heat_readout_at_the_question_from_the_other_answers():
    """page_loo equals what the page computes: state_from_lists on the learner's other answers, the heat raster
    of its article values, read in the cell under the held-out question (README, Validating a map)."""
    from knowledge_map.heatmap import heat_raster
    from knowledge_map.knowledge import neighbour_lists, overall_ability, state_from_lists
    from knowledge_map.validation import PageView, page_loo, readout_articles

    rng = np.random.default_rng(4)
    articles = rng.normal(size=(300, 12))
    articles /= np.linalg.norm(articles, axis=1, keepdims=True)
    questions = articles[:6] + 0.2 * rng.normal(size=(6, 12))
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    xy = rng.uniform(size=(300, 2))
    question_xy = xy[:6] + 0.01
    settings = Settings(prior_weight=0.01)
    lists = neighbour_lists(settings, 80, questions, articles)
    raster, bandwidth = 32, 1.5
    page = PageView(lists, readout_articles(xy, question_xy, raster, bandwidth))
    answered = np.array([[1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 0, 1.0]])
    correct = np.array([[1, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 1.0]])
    difficulty = rng.normal(size=(2, 6))
    centre = np.zeros((2, 6))
    for learner in range(2):
        for q in np.flatnonzero(answered[learner]):
            others = [j for j in np.flatnonzero(answered[learner]) if j != q]
            centre[learner, q] = overall_ability(correct[learner, others], difficulty[learner, others])
    mean = np.array([0.2, -0.1])
    got = page_loo(page, np.arange(6), answered, correct, difficulty, settings.precision, centre, mean)
    for learner in range(2):
        for q in np.flatnonzero(answered[learner]):
            others = [int(j) for j in np.flatnonzero(answered[learner]) if j != q]
            b = np.zeros(6)
            b[others] = difficulty[learner, others]
            state = state_from_lists(lists, others, correct[learner, others], b, settings, mean[learner])
            heat, _ = heat_raster(xy, state.value, raster, bandwidth)
            cell = heat[int(question_xy[q, 1] * raster), int(question_xy[q, 0] * raster)]
            assert got[learner, q] == pytest.approx(cell, abs=1e-9), (learner, q)
    assert (got[answered == 0] == 0.5).all()


def test_the_page_readout_with_the_questions_own_difficulty_is_that_questions_chance():
    """The heat shows sigma(theta - mean b); for a question of difficulty b_q the page's prediction is
    sigma(theta - b_q): harder questions get a lower chance from the same heat, easier ones a higher."""
    from knowledge_map.validation import page_for_question

    theta, mean_b = np.array([-1.5, 0.2, 2.0]), np.array([0.3, -0.4, 0.0])
    b = np.array([[1.0], [-2.0], [0.0]])[:, 0]
    readout = sigmoid(theta - mean_b)
    np.testing.assert_allclose(page_for_question(readout, mean_b, b), sigmoid(theta - b), rtol=1e-12)
    assert np.isfinite(page_for_question(np.array([0.0, 1.0]), np.zeros(2), np.zeros(2))).all()
