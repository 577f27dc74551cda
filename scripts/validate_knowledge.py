"""Rule validate_knowledge: leave-one-out predictions of past answers -> results/<model>/validation/."""

import json

import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path, write_json
from knowledge_map.knowledge import Settings, question_weights, read_lists
from knowledge_map.mapping import read_coords
from knowledge_map.questions import load_questions, question_keys, read_question_embeddings
from knowledge_map.responses import read_responses
from knowledge_map.validation import PageView, predictions_csv, readout_articles, validate
from knowledge_map.workflow import run_rule


def main(snakemake):
    questions = load_questions(snakemake.input.questions or None)  # none: the packaged set
    answers = read_responses(snakemake.input.responses, questions, warn=False)  # calibrate_questions warned
    # The kernel in the unit the lists were made with (the articles' space: knowledge_map/similarity.py).
    lists, info = read_lists(snakemake.input.knowledge_lists)
    if "unit" not in info:
        raise KnowledgeMapError(f"{snakemake.input.knowledge_lists}: made by an older version of knowledge-map; "
                                "rerun it (snakemake --forcerun knowledge_lists)")
    settings = Settings.from_config(snakemake.params.heatmap, info["unit"])
    question_embeddings, _ = read_question_embeddings(snakemake.input.question_embeddings, questions=questions)
    with open(snakemake.input.placed, encoding="utf-8") as handle:
        question_xy = np.array([[q["x"], q["y"]] for q in json.load(handle)], dtype=np.float64)
    weights = question_weights(settings, question_embeddings, question_embeddings, question_xy, question_xy)
    # What the page reads at each question's place: its lists, the map and the heat raster (README, Validating).
    xy, _ = read_coords(snakemake.input.coords)
    heatmap = snakemake.params.heatmap
    page = PageView(lists, readout_articles(xy, question_xy, heatmap["raster"], heatmap["bandwidth"]))
    rows, summary = validate(answers, weights, settings, question_keys(questions),
                             permutations=snakemake.params.validation["permutations"],
                             seed=snakemake.params.validation["seed"], page=page)
    with atomic_path(snakemake.output.predictions) as tmp:
        tmp.write_text(predictions_csv(rows), encoding="utf-8")
    write_json(snakemake.output.summary, summary)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
