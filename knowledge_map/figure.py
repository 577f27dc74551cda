"""A static picture of the map for the Snakemake report and the README.

Points are coloured by topic, questions are black-edged diamonds, and the
labels of the largest cells of one level are written where they are, so a
reviewer can see the map without opening the site.  Rendering is
deterministic (fixed size, no timestamps in the PNG).

Corpus text (labels, topics) and the title are drawn as plain text:
every text call passes ``parse_math=False``, so a title such as
``Fees: $5 (50% off) or $10`` is never read as matplotlib mathtext.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from knowledge_map.io import atomic_path

#: Keyword arguments that make a matplotlib text plain: no mathtext, no TeX.
PLAIN = {"parse_math": False, "usetex": False}


def topic_colours(topics: list[str | None]) -> tuple[np.ndarray, list[tuple[str, Any]]]:
    """One colour per topic from matplotlib's tab20, grey for articles without one."""
    from matplotlib import colormaps

    names = sorted({t for t in topics if t})
    palette = colormaps["tab20"]
    lookup = {name: palette(i % 20) for i, name in enumerate(names)}
    colours = np.array([lookup.get(t, (0.6, 0.6, 0.6, 1.0)) if t else (0.6, 0.6, 0.6, 1.0) for t in topics])
    return colours, [(name, lookup[name]) for name in names]


def render_map(
    path: str,
    xy: np.ndarray,
    topics: list[str | None],
    questions: list[dict[str, Any]],
    level: dict[str, Any] | None,
    n_labels: int = 25,
    title: str = "",
) -> None:
    """Write the map as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours, legend = topic_colours(topics)
    fig, ax = plt.subplots(figsize=(10, 10), dpi=100)
    size = max(0.5, min(8.0, 20000 / max(len(xy), 1)))
    ax.scatter(xy[:, 0], 1 - xy[:, 1], s=size, c=colours, linewidths=0, rasterized=True)
    if questions:
        qx = np.array([q["x"] for q in questions])
        qy = np.array([q["y"] for q in questions])
        ax.scatter(qx, 1 - qy, s=40, marker="D", facecolors="white", edgecolors="black", linewidths=1, label="questions")
    if level is not None:
        cells = sorted((c for c in level["cells"] if c["label"]), key=lambda c: (-c["article_count"], c["gy"], c["gx"]))
        for cell in cells[:n_labels]:
            ax.text(cell["center_x"], 1 - cell["center_y"], cell["label"], fontsize=7, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.7}, **PLAIN)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour, label=name) for name, colour in legend]
    if handles:
        legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        for text in legend.get_texts():
            text.set(**PLAIN)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, **PLAIN)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
