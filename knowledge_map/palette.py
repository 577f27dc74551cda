"""Topic colours: one palette for the map figure and the site.

The site draws with the same list (``TOPIC_COLOURS`` in ``site/js/render.js``;
``tests/test_palette.py`` checks that the two agree): topic code ``i`` gets
``TOPIC_COLOURS[i % 20]`` (Tableau 10, then its light variants), the catch-all
topic "Other" a light grey, and articles without a topic a dark grey.
"""

from __future__ import annotations

TOPIC_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5", "#525252",
)
OTHER_COLOUR = "#a0a0a0"
NO_TOPIC_COLOUR = "#6b6b6b"


def topic_colour(i: int, topics: list[str]) -> str:
    """The colour of topic code ``i`` given the topic names in code order (as ``topicColour`` in render.js).

    Codes past the end of ``topics`` (the site's 255) have no topic.
    """
    if i >= len(topics):
        return NO_TOPIC_COLOUR
    if topics[i] == "Other":
        return OTHER_COLOUR
    return TOPIC_COLOURS[i % len(TOPIC_COLOURS)]


def hex_to_rgb(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` as (r, g, b) in [0, 1], the form matplotlib takes."""
    return tuple(int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5))
