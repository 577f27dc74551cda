"""The topic palette is defined once per language, and the two agree."""

from __future__ import annotations

import re

from daemons import REPO

from knowledge_map.palette import NO_TOPIC_COLOUR, OTHER_COLOUR, TOPIC_COLOURS, hex_to_rgb, topic_colour

RENDER_JS = (REPO / "site/js/render.js").read_text()


def test_python_palette_equals_the_sites():
    """``TOPIC_COLOURS`` in site/js/render.js is the same list, in the same order."""
    block = re.search(r"export const TOPIC_COLOURS = \[(.*?)\];", RENDER_JS, re.S).group(1)
    assert tuple(re.findall(r'"(#[0-9a-fA-F]{6})"', block)) == TOPIC_COLOURS


def test_other_and_no_topic_greys_equal_the_sites():
    """The greys for "Other" and for no topic are render.js's."""
    assert re.search(r'const NO_TOPIC_COLOUR = "(#[0-9a-f]{6})"', RENDER_JS).group(1) == NO_TOPIC_COLOUR
    assert re.search(r'topics\[i\] === "Other"\) return "(#[0-9a-f]{6})"', RENDER_JS).group(1) == OTHER_COLOUR


def test_topic_colour_cycles_and_marks_other_and_missing():
    """Codes wrap after 20 colours; "Other" and codes past the names get their greys."""
    topics = [f"t{i}" for i in range(21)] + ["Other"]
    assert topic_colour(0, topics) == TOPIC_COLOURS[0] and topic_colour(20, topics) == TOPIC_COLOURS[0]
    assert topic_colour(21, topics) == OTHER_COLOUR and topic_colour(255, topics) == NO_TOPIC_COLOUR
    assert hex_to_rgb("#ff8000") == (1.0, 128 / 255, 0.0)


def test_the_map_figure_colours_topics_as_the_site_does():
    """figure.topic_colours gives each article the site's colour for its topic code (sitedata.topic_codes)."""
    from knowledge_map.figure import topic_colours
    from knowledge_map.palette import hex_to_rgb, topic_colour
    from knowledge_map.sitedata import topic_codes

    topics = ["Arts", "Biology", None, "Arts", "Geography"]
    colours, legend = topic_colours(topics)
    codes, names = topic_codes(topics)
    for colour, code in zip(colours, codes):
        assert tuple(colour) == hex_to_rgb(topic_colour(int(code), names))
    assert [name for name, _ in legend] == names
