"""The knowledge estimate: local ability, neighbour lists, the heat raster, question choice, reading list."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_map.heatmap import heat_raster
from knowledge_map.knowledge import (
    ABILITY_PRECISION,
    THETA_MAX,
    NeighbourLists,
    Settings,
    article_state,
    embedding_kernel,
    local_ability,
    map_kernel,
    neighbour_lists,
    overall_ability,
    question_weights,
    sigmoid,
    sparse_error,
    state_from_lists,
)
from knowledge_map.selection import next_question, question_gain, reading_list

SETTINGS = Settings(kernel="embedding", temperature=0.1, prior_weight=0.003)


def unit_rows(rng, n, d=16):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_kernels_are_one_at_identity_and_fall_off():
    """exp((s - 1) / T) is 1 for the same text; the map kernel is 1 at distance 0, exp(-1/2) at sigma."""
    assert embedding_kernel(1.0, 0.1) == 1.0
    assert embedding_kernel(0.9, 0.1) == pytest.approx(np.exp(-1.0))
    assert map_kernel(0.0, 0.15) == 1.0
    assert map_kernel(0.15, 0.15) == pytest.approx(np.exp(-0.5))


def test_no_answers_leaves_the_prior():
    """Without evidence the ability is 0 and the information is the prior's precision."""
    theta, information = local_ability(np.zeros((4, 0)), np.zeros(0), np.zeros(0), 0.25)
    np.testing.assert_array_equal(theta, 0.0)
    np.testing.assert_array_equal(information, 0.25)


def test_one_answer_solves_the_map_equation():
    """One right answer of weight w: theta solves w (1 - sigma(theta)) = lambda theta; a wrong one mirrors it."""
    w, lam = 0.2, 0.05
    theta, _ = local_ability(np.array([[w], [w]]), np.array([[1.0], [0.0]]), np.zeros((2, 1)), lam)
    assert theta[0] > 0 and theta[1] == pytest.approx(-theta[0], abs=1e-12)
    assert w * (1 - sigmoid(theta[0])) == pytest.approx(lam * theta[0], abs=1e-10)


def test_more_weight_moves_the_estimate_further():
    """The same right answer counts more for a target it is closer to."""
    theta, _ = local_ability(np.array([[0.01], [0.1], [1.0]]), np.ones(1), np.zeros(1), SETTINGS.precision)
    assert theta[0] < theta[1] < theta[2]


def test_missing_a_hard_question_says_less_than_missing_an_easy_one():
    """A wrong answer to a question most learners miss (b = 2) lowers the ability less than one to an easy question (b = -2)."""
    theta, _ = local_ability(np.array([[0.3], [0.3]]), np.zeros((2, 1)), np.array([[2.0], [-2.0]]), 0.05)
    assert theta[1] < theta[0] < 0


def test_neighbour_lists_are_the_heaviest_articles_in_order():
    rng = np.random.default_rng(0)
    articles, questions = unit_rows(rng, 300), unit_rows(rng, 7)
    lists = neighbour_lists(SETTINGS, 20, questions, articles, block=64)
    full = question_weights(SETTINGS, questions, articles)
    for q in range(7):
        rows, weights = lists.of(q)
        np.testing.assert_array_equal(rows, np.argsort(-full[q], kind="stable")[:20])
        np.testing.assert_allclose(weights, full[q, rows], rtol=1e-6)
        assert (np.diff(weights) <= 0).all()


def test_map_kernel_lists_hold_the_nearest_articles():
    xy = np.array([[0.1, 0.1], [0.5, 0.5], [0.52, 0.5], [0.9, 0.9]])
    lists = neighbour_lists(Settings(kernel="map", sigma=0.1), 2, question_xy=np.array([[0.5, 0.51]]), xy=xy)
    assert lists.of(0)[0].tolist() == [1, 2]


def test_state_from_lists_equals_the_dense_computation():
    """Solving only the listed articles gives the same values as weighing every article with the lists."""
    rng = np.random.default_rng(1)
    articles, questions = unit_rows(rng, 200), unit_rows(rng, 9)
    lists = neighbour_lists(SETTINGS, 40, questions, articles)
    answered, correct, b = [3, 0, 7], [1, 0, 1], rng.normal(size=9)
    sparse = state_from_lists(lists, answered, correct, b, SETTINGS, mean_difficulty=0.2)
    dense = article_state(lists.dense(answered), correct, b[answered], SETTINGS, mean_difficulty=0.2)
    for field in ("theta", "information", "evidence", "known", "value"):
        np.testing.assert_allclose(getattr(sparse, field), getattr(dense, field), rtol=0, atol=1e-12)
    untouched = sparse.evidence == 0
    assert untouched.any()  # no answer near: the learner's overall level, not an average learner's
    overall = overall_ability(correct, b[answered])
    assert sparse.overall == dense.overall == overall and overall > 0  # two right of three
    np.testing.assert_allclose(sparse.theta[untouched], overall)
    np.testing.assert_allclose(sparse.value[untouched], sigmoid(overall - 0.2))


def test_overall_ability_is_the_rasch_estimate_of_all_answers():
    """Each answer at weight 1 under N(0, 1): the gradient is zero at the result; no answers give 0."""
    correct, b = np.array([1, 1, 0, 1, 0, 1]), np.array([0.5, -1.0, 0.3, 2.0, -0.4, 0.0])
    a = overall_ability(correct, b)
    assert abs((correct - sigmoid(a - b)).sum() - a * ABILITY_PRECISION) < 1e-10
    assert overall_ability([], []) == 0.0
    assert overall_ability([1] * 20, np.zeros(20)) > overall_ability([1] * 5, np.zeros(5)) > 0  # more evidence, further


def test_a_target_without_evidence_rests_at_the_centre_and_evidence_moves_it_from_there():
    theta, _ = local_ability(np.array([[0.0], [0.2]]), np.zeros(1), np.zeros(1), 0.05, centre=np.array([1.5, 1.5]))
    assert theta[0] == 1.5 and theta[1] < 1.5  # a wrong answer nearby pulls this target below the learner's level


@pytest.mark.parametrize("seed", range(4))
def test_newton_reaches_the_optimum_where_plain_steps_cycle(seed):
    """w = [0.0209, 0.1705], c = [0, 1], b = [3.98, 2.13]: plain Newton cycled 7.98, -3.93, 8, ... and stopped at
    the clamp 8 (optimum 4.08).  The safeguarded steps end where the gradient is zero, here and on random hard
    cases (calibrated difficulties up to +-4, weights over four orders of magnitude)."""
    rng = np.random.default_rng(seed)
    k = 1 + 2 * seed
    w = np.vstack([np.resize([0.0209, 0.1705, 0, 0, 0, 0, 0], k), 10 ** rng.uniform(-4, 0, size=(5000, k))])
    c = np.vstack([np.resize([0, 1, 0, 0, 0, 0, 0], k), rng.integers(0, 2, size=(5000, k))]).astype(float)
    b = np.vstack([np.resize([3.98, 2.13, 0, 0, 0, 0, 0], k), rng.uniform(-4, 4, size=(5000, k))])
    precision = 0.0025
    theta, information = local_ability(w, c, b, precision)
    gradient = (w * (c - sigmoid(theta[:, None] - b))).sum(axis=1) - precision * theta
    inside = np.abs(theta) < THETA_MAX
    assert np.abs(gradient[inside] / information[inside]).max() < 1e-12  # a Newton step from here moves < 1e-12
    if k == 1:
        return
    assert theta[0] == pytest.approx(4.08, abs=0.01)
    assert (np.sign(gradient[~inside]) == np.sign(theta[~inside])).all()  # at the bound only when the optimum is past it


def test_full_lists_cost_nothing_and_short_lists_little():
    rng = np.random.default_rng(2)
    articles, questions = unit_rows(rng, 150), unit_rows(rng, 6)
    full = sparse_error(neighbour_lists(SETTINGS, 150, questions, articles), SETTINGS, questions, articles, trials=3)
    assert full["overall"]["max_abs"] < 1e-6
    short = sparse_error(neighbour_lists(SETTINGS, 30, questions, articles), SETTINGS, questions, articles, trials=3)
    assert 0 < short["overall"]["mean_abs"] < 0.05


def test_heat_raster_is_the_smoothed_mean_of_article_values():
    xy = np.array([[0.1, 0.1], [0.12, 0.1], [0.9, 0.9]])
    heat, density = heat_raster(xy, [0.2, 0.2, 0.9], n=32, bandwidth=1.5)
    assert heat[3, 3] == pytest.approx(0.2) and heat[28, 28] == pytest.approx(0.9)
    assert density[16, 16] == 0 and heat[16, 16] == 0.5  # no article anywhere near: transparent, neutral
    constant, _ = heat_raster(np.random.default_rng(0).uniform(size=(50, 2)), np.full(50, 0.37), 16, 2.0)
    np.testing.assert_allclose(constant[constant != 0.5], 0.37)


def two_clusters():
    """Articles 0-49 in cluster A, 50-99 in cluster B; questions 0, 1 about A, question 2 about B (smaller weights)."""
    rows, weights, offsets = [], [], [0]
    for articles, strength in ((range(0, 50), 0.2), (range(0, 50), 0.19), (range(50, 100), 0.1)):
        rows += list(articles)
        weights += [strength] * 50
        offsets.append(len(rows))
    return NeighbourLists(np.array(offsets, "<u4"), np.array(rows, "<u4"), np.array(weights, "<f4"), 100)


def test_adaptive_choice_moves_to_what_no_answer_covers_yet():
    """The strongest question first; after it, the question about the other cluster, not its near twin."""
    lists = two_clusters()
    zeros = np.zeros(3)
    start = state_from_lists(lists, [], [], zeros, SETTINGS)
    assert next_question(lists, start, zeros) == 0
    after = state_from_lists(lists, [0], [1], zeros, SETTINGS)
    assert question_gain(lists, 1, after, 0.0) < question_gain(lists, 2, after, 0.0)
    assert next_question(lists, after, zeros, exclude=[0]) == 2


def test_a_focus_asks_about_the_chosen_area():
    """With the focus on cluster A, the next question is about A even though B is less known."""
    lists = two_clusters()
    zeros = np.zeros(3)
    after = state_from_lists(lists, [0], [1], zeros, SETTINGS)
    focus = np.arange(100) < 50
    assert next_question(lists, after, zeros, exclude=[0], focus=focus) == 1
    assert next_question(lists, after, zeros, exclude=[0, 1], focus=focus) == 2  # only candidate left


def test_reading_list_is_near_what_is_known_and_skips_what_was_asked():
    """After a right answer, its neighbours that are least known come first; the asked-about article is left out."""
    rows = np.array([5, 1, 2, 3, 4, 7, 8, 9], "<u4")
    weights = np.array([0.5, 0.02, 0.01, 0.005, 0.002, 0.5, 0.02, 0.01], "<f4")
    lists = NeighbourLists(np.array([0, 5, 8], "<u4"), rows, weights, 10)
    state = state_from_lists(lists, [0, 1], [1, 0], np.zeros(2), SETTINGS)
    chosen = reading_list(state, lists, [0, 1], SETTINGS.prior_weight, count=3)
    assert 5 not in chosen and 7 not in chosen
    assert set(chosen) <= {1, 2, 3, 4}
    assert chosen == sorted(chosen, key=lambda i: -(state.known[i] / (state.known[i] + 0.003) * (1 - state.value[i])))


def test_estimator_defaults_are_the_config_schemas():
    """Settings() and the config schema's heatmap defaults agree, so Python callers and the workflow estimate alike."""
    from knowledge_map.config import schema

    defaults = {key: value["default"] for key, value in schema()["properties"]["heatmap"]["properties"].items()}
    assert Settings.from_config(defaults) == Settings()


def test_a_model_whose_cosines_sit_higher_gets_the_same_kernel_and_placement():
    """Models differ in where their cosines sit (MiniLM's unrelated pairs near 0, Qwen3's and E5's near 0.6-0.9)
    with the same neighbours.  Temperatures are in the space's dissimilarity unit, so a space with every cosine
    raised, cos' = a + (1 - a) cos (here: a shared extra dimension), gives the same weights, lists and places;
    in plain cosine units every answer outweighed the prior nearly everywhere."""
    from knowledge_map.placement import place_questions
    from knowledge_map.similarity import dissimilarity_unit

    rng = np.random.default_rng(12)
    articles, questions = unit_rows(rng, 400, 200), unit_rows(rng, 6, 200)
    questions[:5] = articles[[3, 50, 51, 200, 399]] + 0.3 * unit_rows(rng, 5, 200)  # about articles; #5 about nothing
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    xy = rng.random((400, 2))

    def raised(rows, a=0.6):
        return np.hstack([np.sqrt(1 - a) * rows, np.full((len(rows), 1), np.sqrt(a))])

    unit, unit_raised = dissimilarity_unit(articles), dissimilarity_unit(raised(articles))
    assert unit_raised == pytest.approx(0.4 * unit, rel=1e-9)
    plain = Settings(prior_weight=0.01, unit=unit)
    shifted = Settings(prior_weight=0.01, unit=unit_raised)
    np.testing.assert_allclose(question_weights(shifted, raised(questions), raised(articles)),
                               question_weights(plain, questions, articles), rtol=1e-9)
    lists, lists_raised = (neighbour_lists(s, 50, q, a) for s, q, a in
                           ((plain, questions, articles), (shifted, raised(questions), raised(articles))))
    assert lists.rows.tolist() == lists_raised.rows.tolist()
    np.testing.assert_allclose(lists.weights, lists_raised.weights, rtol=1e-5)
    cosine_units = question_weights(Settings(prior_weight=0.01), raised(questions), raised(articles))
    assert (cosine_units > Settings(prior_weight=0.01).precision).mean() > 0.9  # what absolute units did
    assert (question_weights(plain, questions, articles) > plain.precision).mean() < 0.1
    bare = [{"question": str(q)} for q in range(6)]
    titles = [f"a{i}" for i in range(400)]
    placed = place_questions(bare, questions, articles, xy, titles, 10, unit=unit)
    placed_raised = place_questions(bare, raised(questions), raised(articles), xy, titles, 10, unit=unit_raised)
    np.testing.assert_allclose([[p["x"], p["y"]] for p in placed], [[p["x"], p["y"]] for p in placed_raised],
                               atol=1e-5)  # similarities are float32 there


def test_a_question_about_nothing_in_the_corpus_is_remote_in_any_models_scale():
    """Remote: its best article is no more like it than 1 % of article pairs are like each other; a measure of
    the space alone (not of the kernel's settings), the same when every cosine sits higher."""
    from knowledge_map.similarity import remote_questions, remote_threshold

    rng = np.random.default_rng(13)
    centres = unit_rows(rng, 8, 64)
    articles = centres[rng.integers(0, 8, 600)] + 0.35 * rng.normal(size=(600, 64)) / 8
    articles /= np.linalg.norm(articles, axis=1, keepdims=True)
    questions = np.vstack([articles[[5, 300]] + 0.05 * unit_rows(rng, 2, 64), unit_rows(rng, 1, 64)])
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)

    def raised(rows, a=0.6):
        return np.hstack([np.sqrt(1 - a) * rows, np.full((len(rows), 1), np.sqrt(a))])

    assert remote_questions(questions, articles, remote_threshold(articles)) == [2]
    assert remote_questions(raised(questions), raised(articles), remote_threshold(raised(articles))) == [2]
    assert remote_questions(questions, articles[:1], remote_threshold(articles[:1])) == []  # no pairs: none remote
