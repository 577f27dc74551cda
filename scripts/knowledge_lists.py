"""Rule knowledge_lists: each question's most strongly tied articles -> results/<model>/map/knowledge_lists.h5."""

import json
import logging

import numpy as np

from knowledge_map.knowledge import Settings, neighbour_lists, sparse_error, write_lists
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.questions import read_question_embeddings
from knowledge_map.similarity import dissimilarity_unit, remote_questions, remote_threshold
from knowledge_map.workflow import run_rule


def main(snakemake):
    heatmap = snakemake.params.heatmap
    question_embeddings, keys = read_question_embeddings(snakemake.input.question_embeddings, snakemake.input.embeddings)
    embeddings = read_embeddings(snakemake.input.embeddings)
    unit = dissimilarity_unit(embeddings)  # T's scale in this model's space (recorded for the validation)
    settings = Settings.from_config(heatmap, unit)
    xy, _ = read_coords(snakemake.input.coords)
    with open(snakemake.input.questions, encoding="utf-8") as handle:
        question_xy = np.array([[q["x"], q["y"]] for q in json.load(handle)], dtype=np.float64)
    sources = {"question_embeddings": question_embeddings, "embeddings": embeddings, "question_xy": question_xy, "xy": xy}
    lists = neighbour_lists(settings, heatmap["neighbours"], **sources)
    accuracy = sparse_error(lists, settings, **sources)
    log = logging.getLogger("knowledge_map")
    if accuracy["overall"]["mean_abs"] > 0.01:
        log.warning("heatmap.neighbours = %d misses much of the kernel (mean error %.3f against the full estimate, "
                    "max %.3f): raise it, or lower heatmap.temperature (the map kernel reaches every article within "
                    "~3 sigma)", heatmap["neighbours"], accuracy["overall"]["mean_abs"], accuracy["overall"]["max_abs"])
    threshold = remote_threshold(embeddings)
    remote = remote_questions(question_embeddings, embeddings, threshold)
    if remote:
        log.warning("%d question(s) are no more like any article than 1%% of unrelated articles are like each other "
                    "(best cosine <= %.2f: %s): nothing in the corpus is about them, so their answers say little "
                    "about any region", len(remote), threshold,
                    ", ".join(repr(keys[q]) for q in remote[:10]) + (", ..." if len(remote) > 10 else ""))
    write_lists(snakemake.output[0], lists, {"settings": heatmap, "unit": unit, "sparse_vs_full": accuracy,
                                             "remote_threshold": threshold, "remote_questions": [keys[q] for q in remote]})


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
