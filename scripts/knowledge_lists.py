"""Rule knowledge_lists: each question's most strongly tied articles -> results/<model>/map/knowledge_lists.h5."""

import json
import logging

import numpy as np

from knowledge_map.knowledge import Settings, neighbour_lists, remote_questions, sparse_error, write_lists
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.questions import read_question_embeddings
from knowledge_map.similarity import dissimilarity_unit
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
    remote = remote_questions(lists, settings)
    if remote:
        log.warning("%d question(s) weigh no article more than the prior does (%s): nothing in the corpus is like "
                    "them, so their answers move only the learner's overall level", len(remote),
                    ", ".join(repr(keys[q]) for q in remote[:10]) + (", ..." if len(remote) > 10 else ""))
    write_lists(snakemake.output[0], lists, {"settings": heatmap, "unit": unit, "sparse_vs_full": accuracy,
                                             "remote_questions": [keys[q] for q in remote]})


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
