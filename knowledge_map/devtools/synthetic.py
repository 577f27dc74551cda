"""Synthetic map data at any scale, for the site benchmark and the README screenshot.

Clustered coordinates (a mixture of Gaussian blobs of different sizes,
normalised like a real map) and titles whose lengths follow real Wikipedia
titles (1 to 5 words, ~18 characters on average), so a benchmark measures
the byte counts and text work a real 250,000-article map would cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from knowledge_map.grid import cell_index
from knowledge_map.mapping import normalise_coords

SYLLABLES = ["ka", "lo", "mer", "tan", "ri", "sol", "ve", "dor", "an", "is", "pol", "gra", "ne", "ut", "bel", "cor"]
#: Heatmap and site settings of a synthetic map (the map kernel: synthetic articles have no embeddings).
HEATMAP = {"space": "map", "temperature": 0.1, "sigma": 0.03, "prior_weight": 0.003, "neighbours": 1000,
           "raster": 256, "bandwidth": 2.0, "read_next": 5}
SITE = {"excerpt_chars": 280, "chunk_rows": 500}
TOPICS = ["Arts", "Biology", "Geography", "History", "Mathematics", "People", "Physics", "Society", "Technology"]


def clustered_xy(n: int, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in blobs of random size and spread, normalised to [0, 1]² like a UMAP map; and each one's blob."""
    centres = rng.uniform(-10, 10, size=(clusters, 2))
    spreads = rng.uniform(0.3, 1.8, size=clusters)
    sizes = rng.dirichlet(np.full(clusters, 2.0))
    which = rng.choice(clusters, size=n, p=sizes)
    raw = centres[which] + rng.normal(size=(n, 2)) * spreads[which, None]
    xy, _ = normalise_coords(raw)
    return xy, which


def word(rng: np.random.Generator) -> str:
    """A pronounceable made-up word of 1 to 4 syllables."""
    return "".join(rng.choice(SYLLABLES, size=rng.integers(1, 5))).capitalize()


def titles_for(n: int, rng: np.random.Generator) -> list[str]:
    """Unique titles of 1 to 5 words (mostly 1 to 3, as on Wikipedia)."""
    counts = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.3, 0.38, 0.2, 0.08, 0.04])
    vocabulary = [word(rng) for _ in range(5000)]
    picks = rng.integers(0, len(vocabulary), size=int(counts.sum()))
    titles, at = [], 0
    for i, count in enumerate(counts):
        titles.append(" ".join(vocabulary[j] for j in picks[at : at + count]) + ("" if i % 7 else f" ({i})"))
        at += count
    return titles


def synthetic_map(n: int, seed: int = 0, clusters: int = 60, text_chars: int = 600) -> dict[str, Any]:
    """Everything :func:`knowledge_map.sitedata.write_site_data` needs for ``n`` articles."""
    rng = np.random.default_rng(seed)
    xy, which = clustered_xy(n, clusters, rng)
    titles = titles_for(n, rng)
    filler = " ".join(word(rng).lower() for _ in range(400))
    starts = rng.integers(0, len(filler) - text_chars, size=n)
    texts = [f"{titles[i]} is an article. " + filler[s : s + text_chars] for i, s in enumerate(starts)]
    return {
        "titles": titles,
        "urls": [f"https://en.wikipedia.org/wiki/Synthetic_{i}" for i in range(n)],
        "texts": texts,
        "topics": [TOPICS[c % len(TOPICS)] for c in which],
        "xy": xy,
        "labels": synthetic_labels(xy, titles, [5, 10, 20, 40]),
        "questions": synthetic_questions(xy, titles, rng, 40),
    }


def synthetic_labels(xy: np.ndarray, titles: list[str], levels: list[int]) -> dict[str, Any]:
    """cell_labels.json-shaped levels: each non-empty cell labelled with its first article's title."""
    out = []
    for n in levels:
        cell = cell_index(xy[:, 1], n) * n + cell_index(xy[:, 0], n)
        counts = np.bincount(cell, minlength=n * n)
        first = np.full(n * n, -1)
        occupied, at = np.unique(cell, return_index=True)
        first[occupied] = at
        cells = [
            {
                "gx": c % n,
                "gy": c // n,
                "label": titles[first[c]] if counts[c] else None,
                "article_count": int(counts[c]),
                "keywords": [],
            }
            for c in range(n * n)
        ]
        out.append({"n": n, "cells": cells})
    return {"levels": out}


def synthetic_questions(xy: np.ndarray, titles: list[str], rng: np.random.Generator, count: int) -> list[dict]:
    """``count`` four-option questions, each placed on a random article."""
    rows = rng.choice(len(xy), size=min(count, len(xy)), replace=False)
    return [
        {
            "question": f"Which of these is the article at this place on the map? ({k + 1})",
            "options": [titles[r], "None of these", "All of these", "Something else"],
            "correctIndex": 0,
            "source_article": titles[r],
            "x": float(xy[r, 0]),
            "y": float(xy[r, 1]),
        }
        for k, r in enumerate(rows)
    ]


def write_synthetic_site(data_dir: str | Path, map_id: str, n: int, n_questions: int = 40, seed: int = 0,
                         text_chars: int = 600, neighbours: int = HEATMAP["neighbours"]) -> dict[str, Any]:
    """A synthetic map of ``n`` articles in ``data_dir/map_id/``, listed in ``data_dir/index.json``.

    Written by the workflow's own writers (:func:`knowledge_map.sitedata.write_site_data`,
    :func:`~knowledge_map.sitedata.write_site_index`); the questions' lists come from the
    map kernel, ``neighbours`` articles each.  ``map_id`` is also the model's name in the
    manifest.  Returns the manifest.
    """
    from knowledge_map.knowledge import Settings, neighbour_lists
    from knowledge_map.sitedata import write_site_data, write_site_index

    folder = Path(data_dir) / map_id
    m = synthetic_map(n, seed=seed, text_chars=text_chars)
    questions = synthetic_questions(m["xy"], m["titles"], np.random.default_rng(seed + 1), n_questions)
    question_xy = np.array([[q["x"], q["y"]] for q in questions])
    lists = neighbour_lists(Settings(kernel="map", sigma=HEATMAP["sigma"]), min(neighbours, n),
                            question_xy=question_xy, xy=m["xy"])
    names = {"points": "points.bin", "titles": "titles.json", "details": "details", "labels": "labels.json",
             "questions": "questions.json", "knowledge": "knowledge.bin", "manifest": "manifest.json"}
    outputs = {key: str(folder / name) for key, name in names.items()}
    manifest = write_site_data(outputs, m["titles"], m["urls"], m["texts"], m["topics"], m["xy"], m["labels"],
                               questions, {}, map_id, {**HEATMAP, "neighbours": min(neighbours, n)}, SITE,
                               lists=lists)
    write_site_index(Path(data_dir) / "index.json")
    return manifest
