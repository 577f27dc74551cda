"""The page's pure modules, unit by unit, in real Chromium: no workflow run.

The tracked site/ folder is served as it is and each module is imported into
a blank page (the ``module_page`` fixture); inputs are made here.  Covers the
share link (share.js, hostile links included), label choice and placement
(labels.js), the quiz and its chooser (quiz.js), the grid convention against
Python's (grid.js), and the map index and ``?map=`` choice (maps.js).  The
map switcher itself is driven on two small synthetic maps at the end.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from knowledge_map.grid import cell_center, cell_index
from knowledge_map.sitedata import MAP_ID

pytestmark = pytest.mark.browser


def call(page, module, body, arg=None):
    """Run ``body`` (a function of ``m``, the imported module, and ``arg``) in the page; return its result."""
    return page.evaluate(f"async (arg) => {{ const m = await import('/js/{module}'); return ({body})(m, arg); }}", arg)


# ------------------------------------------------------------------ share.js

def decode(page, hash_, n_questions=5, option_counts=None):
    return call(page, "share.js", "(m, [h, n, c]) => m.decodeState(h, n, c)", [hash_, n_questions, option_counts])


def test_share_link_round_trips_answers_in_order_and_the_view(module_page):
    answers = [{"q": 3, "option": 1}, {"q": 0, "option": 4}, {"q": 12, "option": 0}]
    view = {"cx": 0.1234567, "cy": 0.9, "zoom": 12.5}
    hash_ = call(module_page, "share.js", "(m, [a, v]) => m.encodeState(a, v)", [answers, view])
    assert hash_ == "#a=3.1,0.4,12.0&v=0.1234567,0.9000000,12.50000"
    got = decode(module_page, hash_, 13, [5] * 13)
    assert got["answers"] == answers
    assert got["view"] == pytest.approx(view, abs=1e-7)


def test_share_link_without_answers_or_view_is_empty(module_page):
    assert call(module_page, "share.js", "(m) => m.encodeState([], null)") == ""
    for empty in ("", "#", None):
        assert decode(module_page, empty) == {"answers": [], "view": None, "foreign": False}


def test_a_link_made_for_other_questions_keeps_its_view_but_not_its_answers(module_page):
    """Answer indices mean questions and options of one question set (manifest questions_key); after the questions
    are edited, reordered or replaced, replaying them would answer other questions."""
    view = {"cx": 0.25, "cy": 0.5, "zoom": 2}
    hash_ = call(module_page, "share.js", "(m, [a, v]) => m.encodeState(a, v, 'k1')", [[{"q": 1, "option": 0}], view])
    assert hash_ == "#a=1.0&q=k1&v=0.2500000,0.5000000,2.000000"
    same = call(module_page, "share.js", "(m, h) => m.decodeState(h, 3, null, 'k1')", hash_)
    other = call(module_page, "share.js", "(m, h) => m.decodeState(h, 3, null, 'k2')", hash_)
    assert same["answers"] == [{"q": 1, "option": 0}] and not same["foreign"]
    assert other["answers"] == [] and other["foreign"] and other["view"] == view
    # A view-only link names no answers to drop.
    assert not call(module_page, "share.js", "(m) => m.decodeState('#q=k1&v=0.5,0.5,1', 3, null, 'k2')")["foreign"]
    # A link from before the key (no q=) is still read.
    assert call(module_page, "share.js", "(m) => m.decodeState('#a=1.0', 3, null, 'k2')")["answers"] == [{"q": 1, "option": 0}]


@pytest.mark.parametrize(
    ("hash_", "answers"),
    [
        ("#a=9.0,5.1,4.1", [{"q": 4, "option": 1}]),  # questions 9 and 5 do not exist (5 questions)
        ("#a=1.4,2.3", [{"q": 2, "option": 3}]),  # question 1 has 4 options: option 4 is out of range
        ("#a=1.0,1.2", [{"q": 1, "option": 0}]),  # answered twice: the first answer counts
        ("#a=-1.0,1.-2,1e2.0,0x1.0,1.0.0,+1.0,1.0x", []),  # not two unsigned decimal integers
        ("#a=0000001.0,2.0000003", []),  # more than six digits, though the values are in range
        ("#a=<script>alert(1)</script>,<img src=x onerror=alert(1)>", []),
        ("#a=%3Cimg%3E,2.1", [{"q": 2, "option": 1}]),
        ("#a=0.1&a=2.2", [{"q": 0, "option": 1}]),  # a repeated key: the first one
        ("#__proto__=1&constructor=2&a=3.0", [{"q": 3, "option": 0}]),
    ],
)
def test_hostile_or_out_of_range_answers_are_dropped(module_page, hash_, answers):
    """Every malformed or out-of-range item goes; the well-formed ones in range stay."""
    assert decode(module_page, hash_, 5, [4, 4, 4, 4, 4])["answers"] == answers


@pytest.mark.parametrize(
    "v", ["NaN,0.5,1", "0.5,0.5,0", "0.5,0.5,-3", "0.5,0.5", "0.5,0.5,1,9", "Infinity,0.5,1", "x,y,z", "", ",,"]
)
def test_malformed_views_are_dropped(module_page, v):
    assert decode(module_page, f"#a=1.1&v={v}")["view"] is None


def test_a_far_off_view_from_a_link_is_clamped_by_the_view(module_page):
    """A finite but absurd view decodes; View.set keeps the map in reach and the zoom in bounds."""
    got = module_page.evaluate(
        """async () => {
             const s = await import('/js/share.js');
             const {View, MAX_ZOOM} = await import('/js/view.js');
             const saved = s.decodeState('#v=1e308,-1e308,1e300', 1).view;
             const view = new View();
             view.set(saved.cx, saved.cy, saved.zoom);
             return [view.cx, view.cy, view.zoom, MAX_ZOOM];
           }"""
    )
    cx, cy, zoom, max_zoom = got
    assert cx == 1.2 and cy == -0.2 and zoom == max_zoom


# ----------------------------------------------------------------- labels.js

LEVELS = [{"n": 3, "cells": []}, {"n": 6, "cells": []}, {"n": 12, "cells": []}]


@pytest.mark.parametrize(("pixels_per_unit", "n"), [(100, 3), (400, 3), (700, 6), (1400, 12), (10**6, 12)])
def test_the_finest_level_whose_cells_are_wide_enough_is_chosen(module_page, pixels_per_unit, n):
    """Cells at least 110 px wide; the coarsest level when none is."""
    got = call(module_page, "labels.js", "(m, [levels, ppu]) => m.chooseLevel(levels, ppu, 110).n", [LEVELS, pixels_per_unit])
    assert got == n


def test_label_text_size_anchor_and_overlap_rules(module_page):
    got = call(
        module_page,
        "labels.js",
        """(m) => ({
             short: m.labelText({label: 'Physics'}, 10),
             cut: m.labelText({label: 'A very long region name indeed'}, 10),
             none: m.labelText({label: null}, 10),
             sizes: [m.labelSize(0, 0, 11, 20), m.labelSize(400, 400, 11, 20), m.labelSize(100, 400, 11, 20),
                     m.labelSize(900, 400, 11, 20)],
             anchors: [m.labelAnchor({gx: 1, gy: 2, x: 0.11, y: 0.22}, 4), m.labelAnchor({gx: 1, gy: 2}, 4)],
             touching: m.overlaps({x0: 0, y0: 0, x1: 10, y1: 10}, {x0: 10, y0: 0, x1: 20, y1: 10}),
             crossing: m.overlaps({x0: 0, y0: 0, x1: 10, y1: 10}, {x0: 9, y0: 9, x1: 20, y1: 20}),
           })""",
    )
    assert got["short"] == "Physics" and got["none"] == ""
    assert got["cut"] == "A very lo…" and len(got["cut"]) == 10
    assert got["sizes"] == [11, 20, 16, 20]  # 11 + 9 * sqrt(1/4) = 15.5 -> 16; a count above the maximum is capped
    assert got["anchors"] == [[0.11, 0.22], [0.375, 0.625]]  # the articles' mass, else the cell centre
    assert got["touching"] is False and got["crossing"] is True


PLACE = """(m, [level, options]) => {
  const viewport = {width: 800, height: 600};
  const toScreen = (x, y) => [x * 800, (1 - y) * 600];
  const measure = (text, size) => text.length * size * 0.6;
  const placed = m.placeLabels(level, toScreen, measure, viewport, options);
  const first = placed[0];
  return {
    placed: placed.map((l) => ({text: l.text, count: l.cell.count, size: l.size, box: l.box})),
    hit: first ? m.labelAt(placed, first.x, first.y).text : null,
    miss: m.labelAt(placed, -5, -5),
  };
}"""


def random_level(seed, n=12, cells=90):
    rng = np.random.default_rng(seed)
    picks = rng.choice(n * n, cells, replace=False)
    return {
        "n": n,
        "cells": [
            {"gx": int(c % n), "gy": int(c // n), "x": float(rng.uniform(0, 1)), "y": float(rng.uniform(0, 1)),
             "count": int(rng.integers(1, 500)), "label": "" if k % 17 == 0 else f"Region {k} " + "x" * int(rng.integers(0, 30))}
            for k, c in enumerate(picks)
        ],
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placed_labels_never_overlap_stay_in_view_and_go_biggest_first(module_page, seed):
    level = random_level(seed)
    options = {"minPx": 11, "maxPx": 20, "pad": 3, "maxChars": 24, "maxLabels": 25}
    got = call(module_page, "labels.js", PLACE, [level, options])
    placed = got["placed"]
    assert 0 < len(placed) <= 25
    boxes = [p["box"] for p in placed]
    for i, a in enumerate(boxes):
        assert a["x0"] >= 0 and a["y0"] >= 0 and a["x1"] <= 800 and a["y1"] <= 600
        for b in boxes[i + 1 :]:
            assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"])
    assert [p["count"] for p in placed] == sorted((p["count"] for p in placed), reverse=True)
    assert all(p["text"] and len(p["text"]) <= 24 for p in placed)  # empty labels are skipped
    max_count = max(c["count"] for c in level["cells"])
    for p in placed:
        assert p["size"] == round(11 + 9 * math.sqrt(p["count"] / max_count))
    assert got["hit"] == placed[0]["text"] and got["miss"] is None


def test_of_two_overlapping_labels_the_bigger_region_wins(module_page):
    level = {"n": 4, "cells": [
        {"gx": 1, "gy": 1, "x": 0.5, "y": 0.5, "count": 10, "label": "Small region"},
        {"gx": 2, "gy": 1, "x": 0.51, "y": 0.5, "count": 300, "label": "Large region"},
        {"gx": 3, "gy": 3, "x": 0.9, "y": 0.9, "count": 5, "label": "Far away"},
    ]}
    options = {"minPx": 11, "maxPx": 20, "pad": 3, "maxChars": 40, "maxLabels": 80}
    got = call(module_page, "labels.js", PLACE, [level, options])
    assert [p["text"] for p in got["placed"]] == ["Large region", "Far away"]


# ------------------------------------------------------------------- quiz.js

def test_quiz_asks_the_chooser_and_brings_skipped_questions_back_last(module_page):
    got = call(
        module_page,
        "quiz.js",
        """({Quiz}) => {
             const questions = [0, 1, 2].map((i) => ({question: 'q' + i, options: ['a', 'b', 'c', 'd', 'e'], correctIndex: 4}));
             const prefer = (exclude, focus) => [2, 0, 1].find((q) => !exclude.has(q)) ?? null;
             const quiz = new Quiz(questions, prefer);
             const seen = [quiz.current];
             quiz.skip(); seen.push(quiz.current);
             quiz.answer(4); quiz.advance(); seen.push(quiz.current);
             quiz.answer(0); quiz.advance(); seen.push(quiz.current);
             return [seen, quiz.evidence()];
           }""",
    )
    seen, evidence = got
    assert seen == [2, 0, 1, 2]  # the chooser's order; the skipped question comes back when nothing else is left
    assert evidence == [{"q": 0, "correct": True}, {"q": 1, "correct": False}]  # option 4 of 5 is right


def test_quiz_falls_back_to_file_order_when_the_chooser_has_no_usable_pick(module_page):
    """A chooser that returns null, or a question already answered, is not obeyed: the first open question is asked."""
    got = call(
        module_page,
        "quiz.js",
        """({Quiz}) => {
             const questions = [0, 1, 2, 3].map((i) => ({question: 'q' + i, options: ['a', 'b'], correctIndex: 0}));
             const none = new Quiz(questions, () => null);
             const stale = new Quiz(questions, () => 0);  // always question 0, answered after the first step
             const order = [stale.current];
             for (let i = 0; i < 4; i++) { stale.answer(1); stale.advance(); order.push(stale.current); }
             return [none.current, order, stale.correctCount(), new Quiz([], () => 0).current];
           }""",
    )
    assert got == [0, [0, 1, 2, 3, None], 0, None]


def test_quiz_hands_the_focus_to_the_chooser_and_restores_only_valid_answers(module_page):
    got = call(
        module_page,
        "quiz.js",
        """({Quiz}) => {
             const questions = [0, 1, 2].map((i) => ({question: 'q' + i, options: ['a', 'b', 'c'], correctIndex: 2}));
             const seen = [];
             const quiz = new Quiz(questions, (exclude, focus) => { seen.push(focus ? Array.from(focus) : null); return 2; });
             quiz.setFocus(Uint8Array.from([0, 1, 1]));
             quiz.restore([{q: 1, option: 2}, {q: 7, option: 0}, {q: 1, option: 0}, {q: 0, option: 1}]);
             return {seen, answers: quiz.answers, current: quiz.current, right: quiz.correctCount(),
                     evidence: quiz.evidence()};
           }""",
    )
    assert got["seen"][0] is None and got["seen"][1] == [0, 1, 1]
    assert got["answers"] == [{"q": 1, "option": 2}, {"q": 0, "option": 1}]  # q 7 does not exist; q 1's second answer goes
    assert got["current"] == 2 and got["right"] == 1
    assert got["evidence"] == [{"q": 1, "correct": True}, {"q": 0, "correct": False}]


# ------------------------------------------------------------------- grid.js

def test_grid_convention_agrees_between_js_and_python(module_page):
    values = [0.0, 0.1, 0.333, 0.5, 0.99999, 1.0, -0.5, 1.5]
    got = call(
        module_page,
        "grid.js",
        """(g, values) => [7, 40].map((n) => [Array.from({length: n}, (_, i) => g.cellCenter(i, n)),
                                              values.map((v) => g.cellIndex(v, n))])""",
        values,
    )
    for (centres, indices), n in zip(got, (7, 40), strict=True):
        np.testing.assert_allclose(centres, cell_center(np.arange(n), n), atol=1e-15)
        assert indices == cell_index(values, n).tolist()


# ------------------------------------------------------------------- maps.js

IDS = ["all-MiniLM-L6-v2", "Qwen--Qwen3-Embedding-0.6B", "_x", "a.b_c-d", "..", ".", "../secret", ".hidden",
       "-dash", "a/b", "a b", "a%2Fb", "", "é", "x" * 200, "x" * 201]


def test_map_ids_agree_between_js_and_python(module_page):
    got = call(module_page, "maps.js", "(m, ids) => ids.map((id) => m.MAP_ID.test(id))", IDS)
    assert got == [bool(MAP_ID.fullmatch(i)) for i in IDS]
    assert got[:4] == [True] * 4 and not any(got[4:-2])


def test_only_well_formed_listed_maps_can_be_chosen(module_page):
    index = {"maps": [
        {"id": "../secret", "model": "x"}, {"id": 5}, None, "all-MiniLM-L6-v2",
        {"id": "b-model", "model": "B", "count": 1200}, {"id": "a-model", "model": "<b>A</b>"},
        {"id": "b-model", "model": "duplicate"},
    ]}
    got = call(
        module_page,
        "maps.js",
        """(m, index) => {
             const maps = m.listedMaps(index);
             const pick = (search) => { const map = m.chooseMap(maps, search); return map && map.id; };
             return {
               ids: maps.map((e) => e.id),
               chosen: ['', '?map=a-model', '?map=nope', '?map=../secret', '?map=', '?x=1&map=a-model'].map(pick),
               none: [m.chooseMap(m.listedMaps({}), '?map=a'), m.listedMaps(null).length, m.listedMaps({maps: 'x'}).length],
               search: [m.mapSearch('', 'a-model'), m.mapSearch('?x=1&map=b', 'a.b'), m.mapSearch('?map=a', 'a&b=c')],
               base: m.mapBase('data/', 'a.b_c-d'),
               titles: maps.map(m.mapTitle),
             };
           }""",
        index,
    )
    assert got["ids"] == ["b-model", "a-model"]
    assert got["chosen"] == ["b-model", "a-model", "b-model", "b-model", "b-model", "a-model"]
    assert got["none"] == [None, 0, 0]
    assert got["search"] == ["?map=a-model", "?x=1&map=a.b", "?map=a%26b%3Dc"]
    assert got["base"] == "data/a.b_c-d/"
    assert got["titles"] == ["B (1,200 articles)", "<b>A</b>"]  # text: the switcher sets it with textContent


# ------------------------------------------------------------ the map switcher

@pytest.fixture(scope="module")
def two_maps(tmp_path_factory):
    """A served site with two small synthetic maps (``alpha``: 300 articles, ``beta``: 200), built without the workflow."""
    from knowledge_map.devtools.siteserver import assemble_site, serve
    from knowledge_map.devtools.synthetic import write_synthetic_site

    data = tmp_path_factory.mktemp("maps") / "data"
    write_synthetic_site(data, "beta", 200, n_questions=6, seed=2, neighbours=50)
    write_synthetic_site(data, "alpha", 300, n_questions=6, seed=1, neighbours=50)
    with serve(assemble_site(data, tmp_path_factory.mktemp("site") / "site")) as url:
        yield url, data


def open_map(chromium, url):
    page = chromium.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function("window.km && km.titlesReady()")
    return page, errors


def test_index_lists_both_maps_and_the_page_switches_between_them(chromium, two_maps):
    url, data = two_maps
    index = json.loads((data / "index.json").read_text())
    assert [m["id"] for m in index["maps"]] == ["alpha", "beta"]
    page, errors = open_map(chromium, url)
    try:
        assert page.evaluate("[km.state.map.id, km.state.points.n, location.search]") == ["alpha", 300, "?map=alpha"]
        assert page.locator("#map-choice").is_visible()
        assert page.locator("#map-select option").all_text_contents() == ["alpha (300 articles)", "beta (200 articles)"]
        page.locator("#map-select").select_option("beta")
        page.wait_for_function("window.km && km.titlesReady() && km.state.map.id === 'beta'")
        assert page.evaluate("[km.state.points.n, location.search, location.hash]") == [200, "?map=beta", ""]
        page.locator("#quiz-options button").first.click()
        page.locator("#share-button").click()
        link = page.locator("#share-url").input_value()
        assert "?map=beta#a=" in link
        assert errors == []
    finally:
        page.close()
    again, errors = open_map(chromium, link)  # a shared link opens the same map with the same answer
    try:
        assert again.evaluate("[km.state.map.id, km.state.quiz.answers.length]") == ["beta", 1]
        assert errors == []
    finally:
        again.close()


def test_a_link_to_an_unknown_map_opens_the_first_one(chromium, two_maps):
    page, errors = open_map(chromium, two_maps[0] + "?map=..%2Fsecret")
    try:
        assert page.evaluate("[km.state.map.id, location.search]") == ["alpha", "?map=alpha"]
        assert errors == []
    finally:
        page.close()


# ------------------------------------------------------------------ state.js

def test_every_state_field_the_page_uses_is_declared_in_state_js(module_page):
    """The one state object is sealed (a field added elsewhere throws) and every ``state.x`` in site/js is declared."""
    import re

    from knowledge_map.devtools.siteserver import SITE_DIR

    got = call(
        module_page,
        "state.js",
        """(m) => {
             "use strict"; // as in the page's modules
             let threw = false;
             try { m.state.adHoc = 1; } catch (error) { threw = error instanceof TypeError; }
             return {sealed: Object.isSealed(m.state), threw, fields: Object.keys(m.state)};
           }""",
    )
    assert got["sealed"] and got["threw"]
    used = set()
    for path in (SITE_DIR / "js").glob("*.js"):
        code = path.read_text(encoding="utf-8")
        if 'from "./state.js"' in code:  # the modules around the state object (knowledge.js has a `state` of its own)
            used |= set(re.findall(r"(?<![\w./])state\.(?!js\b)(\w+)", code))
    assert used and used <= set(got["fields"]), sorted(used - set(got["fields"]))
