"""The page's estimator (site/js/knowledge.js, heatmap.js) against the package's, in real Chromium.

No workflow run: the tracked site/ folder is served as it is and its modules
are imported by the page; inputs are made here.  Agreement to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_map.heatmap import heat_raster
from knowledge_map.knowledge import Settings, neighbour_lists, state_from_lists
from knowledge_map.selection import next_question, question_gain, reading_list

pytestmark = pytest.mark.browser

SETTINGS = Settings(kernel="embedding", temperature=0.1, prior_weight=0.003)


def world(seed=0, n=400, n_questions=12, k=60):
    rng = np.random.default_rng(seed)
    articles = rng.normal(size=(n, 24))
    articles /= np.linalg.norm(articles, axis=1, keepdims=True)
    questions = articles[rng.choice(n, n_questions, replace=False)] + 0.3 * rng.normal(size=(n_questions, 24))
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    return neighbour_lists(SETTINGS, k, questions, articles), rng


def js_lists(lists):
    return {"offsets": lists.offsets.tolist(), "rows": lists.rows.tolist(), "weights": lists.weights.tolist()}


JS_STATE = """async ([lists, answers, difficulty, prior, meanB, n, focus]) => {
  const k = await import('/js/knowledge.js');
  const L = {offsets: Uint32Array.from(lists.offsets), rows: Uint32Array.from(lists.rows),
             weights: Float32Array.from(lists.weights), questions: lists.offsets.length - 1};
  const s = k.articleState(L, answers, difficulty, prior, meanB, n);
  const mask = focus ? Uint8Array.from(focus) : null;
  const gains = Array.from({length: L.questions}, (_, q) => k.questionGain(L, q, s, difficulty[q], mask));
  return {theta: Array.from(s.theta), information: Array.from(s.information), evidence: Array.from(s.evidence),
          known: Array.from(s.known), value: Array.from(s.value), overall: s.overall, gains,
          next: k.nextQuestion(L, s, difficulty, new Set(answers.map((a) => a.q)), mask),
          read: k.readingList(s, L, answers, prior, 5)};
}"""


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_article_state_choice_and_reading_list_agree_with_python(module_page, seed):
    """Seed 2: the default prior and difficulties up to +-4, where plain Newton steps could cycle."""
    lists, rng = world(seed)
    settings = SETTINGS if seed < 2 else Settings()
    answered = [int(q) for q in rng.choice(12, 5 + 2 * seed, replace=False)]
    correct = [int(c) for c in rng.integers(0, 2, len(answered))]
    difficulty = rng.normal(size=12) if seed < 2 else rng.uniform(-4, 4, size=12)
    focus = (rng.random(400) < 0.5).astype(int) if seed else None
    got = module_page.evaluate(JS_STATE, [js_lists(lists), [{"q": q, "correct": bool(c)} for q, c in zip(answered, correct)],
                                   difficulty.tolist(), settings.prior_weight, 0.3, 400,
                                   None if focus is None else focus.tolist()])
    state = state_from_lists(lists, answered, correct, difficulty, settings, mean_difficulty=0.3)
    assert got["overall"] == pytest.approx(state.overall, abs=1e-9) and state.overall != 0
    for field in ("theta", "information", "evidence", "known", "value"):
        np.testing.assert_allclose(got[field], getattr(state, field), rtol=0, atol=1e-6, err_msg=field)
    mask = None if focus is None else focus.astype(bool)
    gains = [question_gain(lists, q, state, difficulty[q], mask) for q in range(12)]
    np.testing.assert_allclose(got["gains"], gains, rtol=1e-6, atol=1e-6)
    assert got["next"] == next_question(lists, state, difficulty, exclude=answered, focus=mask)
    assert got["read"] == reading_list(state, lists, answered, settings.prior_weight, 5)
    assert len(got["read"]) == 5


def test_heat_raster_agrees_with_python(module_page):
    rng = np.random.default_rng(7)
    xy = rng.uniform(size=(300, 2))
    xy[:10] = [0.0, 1.0]  # edges of the unit square
    values = rng.uniform(size=300)
    got = module_page.evaluate(
        """async ([xs, ys, values, n, bw]) => {
             const h = await import('/js/heatmap.js');
             const r = h.heatRaster(Float64Array.from(xs), Float64Array.from(ys), Float64Array.from(values), n, bw);
             return [Array.from(r.heat), Array.from(r.density)];
           }""",
        [xy[:, 0].tolist(), xy[:, 1].tolist(), values.tolist(), 48, 1.7],
    )
    heat, density = heat_raster(xy, values, 48, 1.7)
    np.testing.assert_allclose(np.reshape(got[0], (48, 48)), heat, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.reshape(got[1], (48, 48)), density, rtol=0, atol=1e-6)


def test_the_estimators_constants_are_the_same_in_python_and_js(module_page):
    """One convention for each shared fact: the solver's step count, bounds and the ability prior's precision."""
    from knowledge_map import knowledge

    got = module_page.evaluate("""async () => {
      const k = await import('/js/knowledge.js');
      return [k.NEWTON_STEPS, k.THETA_MAX, k.STEP_MAX, k.ABILITY_PRECISION];
    }""")
    assert got == [knowledge.NEWTON_STEPS, knowledge.THETA_MAX, knowledge.STEP_MAX, knowledge.ABILITY_PRECISION]
