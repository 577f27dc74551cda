"""Benchmark: the map page at 250,000 (and 1,000,000) synthetic articles in headless Chromium.

Builds site data with the workflow's own writer (knowledge_map.sitedata) from
synthetic clustered coordinates and realistic titles, serves it on loopback,
and measures per run, in a fresh browser context (empty cache):

- bytes transferred until the first render, and until titles are loaded
  (search and hover ready); detail chunks (~165 KB, 500 articles each) load
  only on hover: counted over a short hover sweep until a card shows its link;
- time to first render (navigation start -> first frame with every point);
- frame times while panning and zooming: a real mouse drag and wheel zoom
  (the page's own render time per frame), and an in-page requestAnimationFrame
  pan/zoom loop (frame-to-frame intervals, the time a user waits per frame);
- the knowledge estimate with ``--questions`` questions (default 1,000), each
  with a list of ``heatmap.neighbours`` (1,000) articles: bytes of
  ``knowledge.bin``, and the time from an answer to the updated estimate, heat
  layer, reading list and chosen next question (median and max over 30
  answers), i.e. the time the page is busy after each answer.

Reports the median over runs and prints a final JSON line.  Run:

    PYTHONPATH=. python benchmarks/site_scale.py                 # 250K and 1M, 3 runs each
    PYTHONPATH=. python benchmarks/site_scale.py --sizes 250000 --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from knowledge_map.devtools.siteserver import CHROMIUM, CHROMIUM_ARGS, assemble_site, serve
from knowledge_map.devtools.synthetic import write_synthetic_site

OUT = Path(__file__).resolve().parent / "out"
#: The synthetic map's id: its folder in site/data and its name in index.json.
MAP_ID = "synthetic"

# In-page pan and zoom driven by requestAnimationFrame: frame-to-frame intervals.
RAF_LOOP = """async (frames) => {
  const times = [];
  await new Promise((done) => {
    let i = 0;
    const step = (now) => {
      times.push(now);
      if (i < frames / 2) km.view.panBy(9, 5);
      else km.view.zoomAt(km.view.width / 2, km.view.height / 2, i < frames * 0.75 ? 1.04 : 1 / 1.04);
      km.render();
      if (++i < frames) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  return times.slice(1).map((t, k) => t - times[k]);
}"""

# Answer, update the estimate (articles, heat layer, reading list) and choose the next question, n times.
ANSWER_LOOP = """(n) => {
  const times = [];
  for (let i = 0; i < n; i++) {
    const quiz = km.state.quiz;
    const q = quiz.questions[quiz.current];
    const started = performance.now();
    quiz.answer(i % 3 ? q.correctIndex : (q.correctIndex + 1) % q.options.length);
    km.updateHeat();
    quiz.advance();
    times.push(performance.now() - started);
  }
  return times;
}"""

BYTES = """(until) => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
  .filter((e) => until === null || e.responseEnd <= until)
  .reduce((sum, e) => sum + e.encodedBodySize, 0)"""


def build(n: int, n_questions: int, seed: int = 0) -> Path:
    """Site folder for ``n`` synthetic articles and ``n_questions`` questions under benchmarks/out (reused if built).

    Synthetic articles have no embeddings, so the questions' lists come from the
    map kernel (the page treats both kernels' lists alike).
    """
    data = OUT / f"data-{n}-q{n_questions}"
    if not (data / MAP_ID / "manifest.json").exists():
        started = time.monotonic()
        write_synthetic_site(data, MAP_ID, n, n_questions, seed=seed, text_chars=300)
        print(f"built {n:,} synthetic articles in {time.monotonic() - started:.1f} s", flush=True)
    return assemble_site(data, OUT / f"site-{n}")


def page_bytes_of(url: str, name: str) -> int:
    """Size of a data file of the served site."""
    import urllib.request

    with urllib.request.urlopen(url + f"data/{MAP_ID}/" + name) as response:  # loopback only
        return len(response.read())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def one_run(browser, url: str) -> dict[str, float]:
    """Load, pan, zoom and hover once in a fresh context; return the figures."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function("window.km && km.state.firstRenderMs !== null", timeout=120000)
    first_render = page.evaluate("km.state.firstRenderMs")
    page.wait_for_function("km.titlesReady()", timeout=300000)
    titles_ready = page.evaluate("performance.now()")
    answer_ms = page.evaluate(ANSWER_LOOP, 30)
    bytes_first = page.evaluate(BYTES, first_render)
    bytes_ready = page.evaluate(BYTES, None)

    # A real drag and wheel zoom over the map: the page's render time per frame.
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    log_start = page.evaluate("km.state.frameLog.length")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 300, cy + 150, steps=60)
    page.mouse.up()
    for _ in range(20):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(16)
    page.wait_for_timeout(100)
    renders = page.evaluate(f"km.state.frameLog.slice({log_start}).map((f) => f.ms)")
    intervals = page.evaluate(RAF_LOOP, 120)

    # Hover across the centre until a card shows its link: the detail chunk(s) fetched on the way.
    before = page.evaluate(BYTES, None)
    page.evaluate("km.view.set(0.5, 0.5, 1); km.render()")
    page.mouse.move(cx - 40, cy - 30)
    for dx in range(0, 200, 10):
        page.mouse.move(cx - 40 + dx, cy - 30)
        if page.locator("#card-link").is_visible():
            break
    hover_bytes = page.evaluate(BYTES, None) - before
    context.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return {
        "first_render_ms": first_render,
        "titles_ready_ms": titles_ready,
        "bytes_to_first_render": bytes_first,
        "bytes_until_search_ready": bytes_ready,
        "bytes_fetched_by_hover_sweep": hover_bytes,
        "drag_zoom_render_ms_max": max(renders),
        "drag_zoom_render_ms_p95": percentile(renders, 0.95),
        "drag_zoom_frames": len(renders),
        "raf_frame_interval_ms_max": max(intervals),
        "raf_frame_interval_ms_p95": percentile(intervals, 0.95),
        "knowledge_bin_bytes": page_bytes_of(url, "knowledge.bin"),
        "answer_update_ms_median": statistics.median(answer_ms),
        "answer_update_ms_max": max(answer_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--questions", type=int, default=1000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in args.sizes:
            site = build(n, args.questions)
            with serve(site) as url:
                runs = [one_run(browser, url) for _ in range(args.runs)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            median["runs"] = args.runs
            results[str(n)] = median
            print(f"{n:,} articles (median of {args.runs}): " + json.dumps(median), flush=True)
        browser.close()
    print(json.dumps({"benchmark": "site_scale", "chromium": "headless, --disable-gpu", "results": results}))


if __name__ == "__main__":
    main()
