"""Take the README's screenshot: the map with a knowledge heatmap after a few quiz answers.

    PYTHONPATH=. python docs/screenshot.py <workdir>/site/data docs/screenshot.png
    PYTHONPATH=. python docs/screenshot.py <workdir>/site/data docs/labels-fine.png --answers 0 --zoom 6 --center 0.3 0.6

Serves the tracked site with the given site data on loopback, answers the
first ``--answers`` questions in headless Chromium (right for the topics in
``--known``, wrong otherwise, so the heatmap shows both ends of its scale)
and saves a 1280 x 800 PNG.  ``--zoom`` and ``--center`` frame the view
first (the label screenshots at two zoom levels).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from knowledge_map.devtools.siteserver import CHROMIUM, CHROMIUM_ARGS, assemble_site, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a built site/data folder (index.json and the maps' folders)")
    parser.add_argument("--map", default="", help="the map to show (a folder of DATA; default: the first listed)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--answers", type=int, default=12)
    parser.add_argument("--known", nargs="*", default=["People", "Physical sciences", "Mathematics", "Technology"])
    parser.add_argument("--zoom", type=float, default=1.0, help="view zoom (1 = the whole map)")
    parser.add_argument("--center", type=float, nargs=2, default=(0.5, 0.5), metavar=("X", "Y"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve(assemble_site(args.data, Path(tmp) / "site")) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + (f"?map={args.map}" if args.map else ""))
            page.wait_for_function("window.km && km.titlesReady()")
            page.evaluate("([x, y, z]) => { km.view.set(x, y, z); km.render(); }", [*args.center, args.zoom])
            for _ in range(args.answers):
                q = page.evaluate("km.state.quiz.questions[km.state.quiz.current]")
                option = q["correctIndex"] if q.get("topic") in args.known else (q["correctIndex"] + 1) % 4
                page.locator(f"#quiz-options button[data-option='{option}']").click()
                page.locator("#quiz-next").click()
            box = page.locator("#map").bounding_box()
            if args.answers:
                page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.4)
            page.wait_for_timeout(300)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
