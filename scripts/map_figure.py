"""Rule map_figure: the map as a PNG for the report."""

import json

from knowledge_map.corpus import read_corpus
from knowledge_map.figure import render_map
from knowledge_map.mapping import read_coords
from knowledge_map.workflow import run_rule


def main(snakemake):
    xy, _ = read_coords(snakemake.input.coords)
    topics = read_corpus(snakemake.input.corpus, columns=("topic",)).column("topic").to_pylist()
    with open(snakemake.input.labels, encoding="utf-8") as handle:
        levels = json.load(handle)["levels"]
    with open(snakemake.input.questions, encoding="utf-8") as handle:
        questions = json.load(handle)
    level = levels[1] if len(levels) > 1 else levels[0]
    render_map(snakemake.output[0], xy, topics, questions, level, title=f"{len(xy)} articles, {snakemake.params.model}")


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
