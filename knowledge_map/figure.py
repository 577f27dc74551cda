"""A static picture of the map for the Snakemake report and the README.

Points are coloured by topic, questions are black-edged diamonds, and the
labels of the largest cells of one level (the same names as the site's) are
written on their articles, larger for larger regions, so a reviewer can see
the map without opening the site.  Rendering is
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
    """Each article's colour, and the legend, as the site draws them.

    Topic codes come from :func:`knowledge_map.sitedata.topic_codes` and
    colours from :mod:`knowledge_map.palette`, the site's palette, so a topic
    has one colour in the figure and on the page.
    """
    from knowledge_map.palette import hex_to_rgb, topic_colour
    from knowledge_map.sitedata import topic_codes

    codes, names = topic_codes(topics)
    rgb = {int(code): hex_to_rgb(topic_colour(int(code), names)) for code in np.unique(codes)}
    colours = np.array([rgb[int(code)] for code in codes]).reshape(-1, 3)
    return colours, [(name, hex_to_rgb(topic_colour(i, names))) for i, name in enumerate(names)]


def label_anchor(cell: dict[str, Any]) -> tuple[float, float]:
    """Where a label is written: the mean position of its cell's articles (as on the site), else the centre."""
    x, y = cell.get("x"), cell.get("y")
    return (x, y) if x is not None and y is not None else (cell["center_x"], cell["center_y"])


def label_fontsize(count: int, largest: int, smallest_pt: float = 6.0, largest_pt: float = 11.0) -> float:
    """Font size growing with the articles a label names, like the site's: small + (large - small) * sqrt(count / largest)."""
    share = min(1.0, max(0.0, count / largest)) if largest > 0 else 0.0
    return round(smallest_pt + (largest_pt - smallest_pt) * share**0.5, 2)


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
        largest = cells[0]["article_count"] if cells else 1
        renderer = fig.canvas.get_renderer()
        placed = []
        for cell in cells:
            if len(placed) == n_labels:
                break
            x, y = label_anchor(cell)
            text = ax.text(x, 1 - y, cell["label"], fontsize=label_fontsize(cell["article_count"], largest),
                           ha="center", va="center",
                           bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.7}, **PLAIN)
            box = text.get_window_extent(renderer)
            if any(box.overlaps(other) for other in placed):
                text.remove()  # as on the site: larger regions first, no label over another
            else:
                placed.append(box)
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
