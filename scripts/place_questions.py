"""Rule place_questions: questions -> results/<model>/map/questions.json with x, y."""

import h5py

from knowledge_map.io import write_json
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.placement import place_questions
from knowledge_map.questions import load_questions, read_question_embeddings
from knowledge_map.workflow import run_rule


def main(snakemake):
    questions = load_questions(snakemake.input.questions or None)  # none: the packaged set
    question_embeddings, _ = read_question_embeddings(snakemake.input.question_embeddings)
    embeddings = read_embeddings(snakemake.input.embeddings)
    with h5py.File(snakemake.input.embeddings, "r") as h5:
        titles = h5["titles"].asstr()[()].tolist()
    xy, _ = read_coords(snakemake.input.coords)
    placed = place_questions(questions, question_embeddings, embeddings, xy, titles, **snakemake.params.placement)
    write_json(snakemake.output[0], placed)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
