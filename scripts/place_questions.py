"""Rule place_questions: questions -> results/<model>/map/questions.json with x, y."""

import h5py

from knowledge_map.embed import embed_texts
from knowledge_map.io import write_json
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.models import load_model, resolve_prompt
from knowledge_map.placement import place_questions
from knowledge_map.questions import attach_sources, load_questions, question_text, source_rows
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params
    questions_path = snakemake.input.questions or None  # none: the packaged set
    questions = load_questions(questions_path)
    with h5py.File(snakemake.input.embeddings, "r") as h5:
        titles = h5["titles"].asstr()[()].tolist()
        ids = h5["ids"].asstr()[()].tolist()
    # Source articles by id, or by a title only one article has (refused when ambiguous).
    rows = source_rows(questions, ids, titles, str(questions_path or "the packaged questions"))
    # Questions are few: embed them on the CPU, in float32, wherever this rule runs.
    model = load_model(params.model, "cpu", "float32", params.max_seq_length)
    prompt = resolve_prompt(params.model, params.prompt)
    question_embeddings = embed_texts(model, [question_text(q) for q in questions], 64, prompt)
    embeddings = read_embeddings(snakemake.input.embeddings)
    xy, _ = read_coords(snakemake.input.coords)
    placed = place_questions(questions, question_embeddings, embeddings, xy, titles, **params.placement)
    attach_sources(placed, rows, question_embeddings, embeddings, xy)
    write_json(snakemake.output[0], placed)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
