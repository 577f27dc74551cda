"""The interactive map in real headless Chromium, against the site built by one workflow run.

The tracked static site (site/) and the run's site/data (index.json and the
model's map folder) are copied into a temporary folder and served on
127.0.0.1, as ``python -m http.server -d site`` would.  Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import HOSTILE_ARTICLES, MODEL_SLUG

from knowledge_map.devtools.siteserver import assemble_site, serve
from knowledge_map.heatmap import heat_raster
from knowledge_map.knowledge import NeighbourLists, Settings, state_from_lists

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE_HTML = "<img src=x onerror=alert(1)>"
HOSTILE_SHELL = next(a["title"] for a in HOSTILE_ARTICLES if a["id"] == "hostile-shell")
RTL_TITLE = "القاهرة — Cairo ‏(RTL)"


@pytest.fixture(scope="module")
def site(workflow_run, tmp_path_factory):
    """(base URL, the map's data folder) of the served site."""
    directory = assemble_site(workflow_run / "site/data", tmp_path_factory.mktemp("site") / "site")
    with serve(directory) as url:
        yield url, directory / "data" / MODEL_SLUG


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium


class MapPage:
    """A page of the map with its console errors and dialogs recorded."""

    def __init__(self, browser, url, **context_options):
        self.context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        self.page.wait_for_function("window.km && window.km.titlesReady()", timeout=30000)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def drawn(self):
        """Wait until the frames requested so far have been drawn (two animation frames)."""
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def map_box(self):
        return self.page.locator("#map").bounding_box()

    def page_xy(self, row):
        """Page coordinates of article ``row``."""
        box = self.map_box()
        sx, sy = self.js("(row) => km.screenOf(row)", row)
        return box["x"] + sx, box["y"] + sy

    def map_pixels(self, name):
        """Screenshot of the map area as an RGB array (and saved to tests/artifacts/name)."""
        from PIL import Image

        png = self.page.locator("#map").screenshot()
        save(name, png)
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)

    def close(self):
        self.context.close()


def save(name, png):
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)


@pytest.fixture
def map_page(browser, site):
    pages = []

    def open_page(suffix="", **options):
        page = MapPage(browser, site[0] + suffix, **options)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


def titles(site):
    return json.loads((site[1] / "titles.json").read_text(encoding="utf-8"))


def coordinates(site):
    manifest = json.loads((site[1] / "manifest.json").read_text())
    data = (site[1] / manifest["points"]["file"]).read_bytes()
    n = manifest["count"]
    x = np.frombuffer(data, "<u2", n, manifest["points"]["x_offset"]) / 65535
    y = np.frombuffer(data, "<u2", n, manifest["points"]["y_offset"]) / 65535
    return np.column_stack([x, y])


def most_isolated_row(site):
    """The article farthest from its nearest neighbour: hovering it cannot pick another."""
    xy = coordinates(site)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return int(d.min(axis=1).argmax())


def answer_current(page, right):
    """Answer the current question right or wrong through the UI; return its index."""
    q = page.js("km.state.quiz.current")
    correct = page.js(f"km.state.quiz.questions[{q}].correctIndex")
    option = correct if right else (correct + 1) % 4
    page.page.locator(f"#quiz-options button[data-option='{option}']").click()
    page.page.locator("#quiz-next").click()
    return q


def test_page_loads_without_console_errors(map_page, site):
    page = map_page()
    page.drawn()
    manifest = json.loads((site[1] / "manifest.json").read_text())
    assert page.errors == []
    assert page.js("km.state.points.n") == manifest["count"] == len(titles(site))
    assert page.js("km.state.firstRenderMs") is not None
    assert page.page.locator("#status").is_hidden()
    assert page.page.locator("#topic-legend li").count() == len(manifest["topics"]) > 1
    assert "CC BY-SA 4.0" in page.page.locator("footer").inner_text()
    assert page.page.locator("#quiz-options button").count() == 4
    # Every data file of this build is asked for as FILE?v=<build>: a rebuilt map never meets a cached file of
    # the one before (only the manifest and the index, fetched past the cache, name no build).
    data = [url.split("/data/", 1)[1] for url in page.requests if "/data/" in url]
    assert {"index.json", f"{MODEL_SLUG}/manifest.json"} <= set(data)
    built = [name for name in data if name not in ("index.json", f"{MODEL_SLUG}/manifest.json")]
    assert len(built) >= 5 and all(name.endswith(f"?v={manifest['build']}") for name in built), data
    save("load.png", page.page.screenshot())


def test_hovering_a_point_shows_its_title_and_link(map_page, site):
    page = map_page()
    row = most_isolated_row(site)
    page.page.mouse.move(*page.page_xy(row))
    card = page.page.locator("#card")
    card.wait_for(state="visible")
    assert page.page.locator("#card-title").text_content() == titles(site)[row]
    link = page.page.locator("#card-link")
    link.wait_for(state="visible")
    assert link.get_attribute("href").startswith("https://en.wikipedia.org/wiki/")
    assert page.page.locator("#card-excerpt").text_content().strip(" …")
    save("hover.png", page.page.screenshot())


def test_search_finds_an_article_and_centres_it(map_page, site):
    page = map_page()
    row = titles(site).index("Ada Lovelace")
    page.page.locator("#search-input").fill("LOVELACE")  # substring, other case
    result = page.page.locator(f"#search-results button[data-row='{row}']")
    result.wait_for(state="visible")
    assert result.text_content() == "Ada Lovelace"
    result.click()
    page.page.wait_for_function(f"!km.state.flying && km.state.highlight === {row}")
    sx, sy = page.js(f"km.screenOf({row})")
    box = page.map_box()
    assert math.hypot(sx - box["width"] / 2, sy - box["height"] / 2) < 2
    assert page.js("km.view.zoom") >= 8
    assert page.page.locator("#card-title").text_content() == "Ada Lovelace"
    save("search.png", page.page.screenshot())


def site_lists(site):
    """The neighbour lists the page reads (knowledge.bin), as the package's NeighbourLists."""
    manifest = json.loads((site[1] / "manifest.json").read_text())
    k = manifest["knowledge"]
    blob = (site[1] / k["file"]).read_bytes()
    return NeighbourLists(
        np.frombuffer(blob, "<u4", k["questions"] + 1, k["offsets_offset"]),
        np.frombuffer(blob, "<u4", k["entries"], k["rows_offset"]),
        np.frombuffer(blob, "<f4", k["entries"], k["weights_offset"]),
        manifest["count"],
    ), manifest


def test_answers_move_the_estimate_where_they_should_and_the_page_equals_python(map_page, site):
    """A right answer raises the estimate at the article its question is most tied to, a wrong one lowers it;
    the page's article values and heat raster equal the package's for the same answers (1e-6)."""
    lists, manifest = site_lists(site)
    h = manifest["heatmap"]
    neutral = 1 / (1 + math.exp(h["mean_difficulty"]))
    page = map_page()
    for layer in ("#layer-points", "#layer-labels", "#layer-density"):
        page.page.locator(layer).uncheck()  # leave the knowledge layer alone in the screenshots
    page.map_pixels("heatmap-before.png")
    answered = [answer_current(page, right) for right in (True, False, True)]
    assert len(set(answered)) == 3 and page.js("km.state.quiz.answers.length") == 3
    assert page.page.locator("#quiz-progress").text_content().startswith("3 of")
    values = np.array(page.js("Array.from(km.state.articles.value)"))
    heads = [int(lists.of(q)[0][0]) for q in answered]
    # Two right of three: the learner's overall level is above an average learner's, and the answers move
    # their own articles from that level, up for a right answer, down for the wrong one.
    level = 1 / (1 + math.exp(h["mean_difficulty"] - page.js("km.state.articles.overall")))
    assert level > neutral
    assert values[heads[0]] > level and values[heads[2]] > level and values[heads[1]] < neutral
    questions = json.loads((site[1] / "questions.json").read_text())
    outcome = page.js("km.state.quiz.evidence().map((e) => e.correct)")
    assert outcome == [True, False, True]
    settings = Settings(kernel=h["space"], temperature=h["temperature"], sigma=h["sigma"], prior_weight=h["prior_weight"])
    state = state_from_lists(lists, answered, outcome, [q["difficulty"] for q in questions], settings, h["mean_difficulty"])
    np.testing.assert_allclose(values, state.value, rtol=0, atol=1e-6)
    heat, _ = heat_raster(coordinates(site), state.value, h["raster"], h["bandwidth"])
    live = np.reshape(page.js("Array.from(km.state.heatGrid)"), (h["raster"], h["raster"]))
    np.testing.assert_allclose(live, heat, rtol=0, atol=1e-6)
    page.map_pixels("heatmap-after.png")
    # The readout over the first (right) answer's article says more than "no evidence".
    page.page.mouse.move(*page.page_xy(heads[0]))
    readout = page.page.locator("#heat-readout")
    page.page.wait_for_function("document.querySelector('#heat-readout').dataset.estimate !== undefined")
    assert readout.text_content().startswith("Here: ")
    assert float(readout.get_attribute("data-estimate")) > level
    # What to read next: links to articles, none of them an asked-about article.
    items = page.page.locator("#read-next-list li button")
    assert items.count() == h["read_next"]
    rows = [int(items.nth(i).get_attribute("data-row")) for i in range(items.count())]
    assert not set(rows) & set(heads)
    assert [items.nth(i).text_content() for i in range(len(rows))] == [titles(site)[r] for r in rows]


def test_ask_about_the_area_in_view_picks_a_question_there(map_page, site):
    """Zoomed into one question's area, the next question is tied to the articles in view."""
    lists, _ = site_lists(site)
    page = map_page()
    questions = json.loads((site[1] / "questions.json").read_text())
    target = len(questions) - 1 if page.js("km.state.quiz.current") != len(questions) - 1 else 0
    head = int(lists.of(target)[0][0])
    x, y = coordinates(site)[head]
    page.js(f"km.view.set({x}, {y}, 40); km.render()")
    page.page.locator("#quiz-focus").click()
    chosen = page.js("km.state.quiz.current")
    in_view = np.array(page.js("Array.from(km.state.quiz.focus)"), dtype=bool)
    assert in_view[head] and in_view.sum() < len(in_view)
    assert in_view[lists.of(chosen)[0]].any()
    assert "articles in view" in page.page.locator("#quiz-focus-note").text_content()
    page.page.locator("#quiz-unfocus").click()
    assert page.js("km.state.quiz.focus") is None
    assert page.errors == []


def test_share_link_reproduces_the_state_and_reset_clears_it(map_page, site):
    page = map_page()
    answer_current(page, True)
    answer_current(page, False)
    box = page.map_box()
    page.page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 3)
    zoom = page.js("km.view.zoom")
    page.page.mouse.wheel(0, -400)
    page.page.wait_for_function(f"km.view.zoom > {zoom}")
    page.page.locator("#share-button").click()
    link = page.page.locator("#share-url").input_value()
    assert "#a=" in link and "&q=" in link
    page.page.mouse.move(1, 1)
    state = "JSON.stringify([km.state.quiz.answers, Array.from(km.state.heatGrid)])"
    view = "[km.view.cx, km.view.cy, km.view.zoom]"
    original, original_view = page.js(state), page.js(view)
    shot = page.map_pixels("share-original.png")

    again = map_page(link[len(site[0]) :])  # a fresh page opened from the link
    again.page.mouse.move(1, 1)
    again.page.wait_for_function("km.state.hover === -1")
    again.drawn()
    assert again.js(state) == original
    np.testing.assert_allclose(again.js(view), original_view, rtol=1e-6, atol=1e-7)
    assert again.page.locator("#quiz-progress").text_content() == page.page.locator("#quiz-progress").text_content()
    restored = again.map_pixels("share-restored.png")
    assert shot.shape == restored.shape
    assert (np.abs(shot - restored).sum(axis=2) > 0).mean() < 0.001

    again.page.locator("#reset-button").click()
    assert again.js("km.state.quiz.answers.length") == 0
    assert again.js("location.hash") == ""
    assert again.js("km.state.articles.value.every((v) => v === km.state.articles.value[0])")  # back to the prior
    assert again.page.locator("#quiz-progress").text_content().startswith("0 of")
    assert again.errors == [] and page.errors == []

    # The same link after the questions changed (another questions key): the view comes back, the answers do not.
    foreign = map_page(link[len(site[0]) :].replace("&q=", "&q=other"))
    foreign.drawn()
    assert foreign.js("km.state.quiz.answers.length") == 0
    np.testing.assert_allclose(foreign.js(view), original_view, rtol=1e-6, atol=1e-7)
    assert "other questions" in foreign.page.locator("#status").inner_text()


def test_hostile_titles_are_shown_as_text_and_run_nothing(map_page, site):
    page = map_page()
    for title, query in ((HOSTILE_SHELL, "$(touch"), (RTL_TITLE, "القاهرة"), (HOSTILE_HTML, "<img")):
        row = titles(site).index(title)
        page.page.locator("#search-input").fill(query)
        result = page.page.locator(f"#search-results button[data-row='{row}']")
        result.wait_for(state="visible")
        assert result.text_content() == title
        result.click()
        page.page.wait_for_function(f"!km.state.flying && km.state.highlight === {row}")
        assert page.page.locator("#card-title").text_content() == title
    save("hostile.png", page.page.screenshot())
    # The HTML title, centred by the last search, shown again by hovering it (the card unpinned first).
    page.page.locator("#card-close").click()
    page.page.mouse.move(*page.page_xy(titles(site).index(HOSTILE_HTML)))
    page.page.wait_for_function("km.state.hover >= 0")
    page.page.locator("#card").wait_for(state="visible")
    page.drawn()
    assert page.js("document.querySelectorAll('img').length") == 0
    assert page.dialogs == [] and page.errors == []


def test_labels_never_overlap_and_get_finer_when_zoomed_in(map_page, site):
    page = map_page()
    levels = []
    for zoom in (0.5, 1, 3, 8, 30):
        placed = page.js(
            f"""() => {{ km.view.set(0.5, 0.5, {zoom}); km.render();
                 return [km.state.labelLevel, km.state.placedLabels.map((l) => [l.box, l.text])]; }}"""
        )
        level, labels = placed
        levels.append(level)
        boxes = [b for b, _ in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"])
        if zoom <= 1:
            assert labels, f"no labels at zoom {zoom}"
    ns = [level["n"] for level in json.loads((site[1] / "labels.json").read_text())["levels"]]
    assert levels == sorted(levels) and levels[0] == ns[0] and levels[-1] == ns[-1]


def test_keyboard_alone_answers_and_pans(map_page):
    page = map_page()
    for _ in range(40):
        page.page.keyboard.press("Tab")
        if page.js("document.activeElement.classList.contains('option')"):
            break
    else:
        pytest.fail("Tab never reached a quiz option")
    page.page.keyboard.press("Enter")
    assert page.js("km.state.quiz.answers.length") == 1
    assert page.js("document.activeElement.id") == "quiz-next"
    page.page.keyboard.press("Enter")
    assert page.js("document.activeElement.classList.contains('option')")
    page.page.locator("#map").focus()
    cx = page.js("km.view.cx")
    page.page.keyboard.press("ArrowRight")
    page.page.keyboard.press("+")
    assert page.js("km.view.cx") != cx and page.js("km.view.zoom") > 1


def test_phone_viewport_fits_and_tap_shows_a_card(map_page, site):
    page = map_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    assert page.js("document.documentElement.scrollWidth") <= 390
    box = page.map_box()
    assert box["width"] == 390 and box["height"] > 300
    row = most_isolated_row(site)
    page.page.touchscreen.tap(*page.page_xy(row))
    page.page.locator("#card").wait_for(state="visible")
    assert page.page.locator("#card-title").text_content() == titles(site)[row]
    page.page.locator("#quiz-options button").first.scroll_into_view_if_needed()
    assert page.page.locator("#quiz-options button").first.is_visible()
    save("phone.png", page.page.screenshot(full_page=True))
    assert page.errors == []



def test_labels_sit_on_their_articles_grow_with_size_and_show_keywords_on_hover(map_page, site):
    page = map_page()
    placed = page.js(
        """() => { km.view.set(0.5, 0.5, 1); km.render();
             return km.state.placedLabels.map((l) => ({text: l.text, size: l.size, x: l.x, y: l.y, box: l.box,
                                                       cell: l.cell, at: km.view.toScreen(l.cell.x, l.cell.y)})); }"""
    )
    assert placed
    for label in placed:
        assert label["x"] == pytest.approx(label["at"][0]) and label["y"] == pytest.approx(label["at"][1])
    by_count = sorted(placed, key=lambda label: label["cell"]["count"])
    assert by_count[0]["size"] <= by_count[-1]["size"]
    label = max(placed, key=lambda label: label["cell"]["count"])
    assert label["size"] > min(p["size"] for p in placed) or len(placed) == 1
    # Hover the label's edge (an empty spot on the label, not a point): the card names the region.
    box = page.map_box()
    page.js("() => { km.state.index = null; }")  # no point can be hit: only the label is under the cursor
    page.page.mouse.move(box["x"] + label["box"]["x0"] + 2, box["y"] + label["box"]["y0"] + 2)
    card = page.page.locator("#card")
    card.wait_for(state="visible")
    assert page.page.locator("#card-title").text_content() == label["text"]
    excerpt = page.page.locator("#card-excerpt").text_content()
    assert all(k in excerpt for k in label["cell"]["keywords"])
    assert str(label["cell"]["count"]) in page.page.locator("#card-topic").text_content().replace(",", "")
    assert not page.errors
