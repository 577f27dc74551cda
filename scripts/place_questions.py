"""Rule place_questions: questions -> results/<model>/map/questions.json with x, y."""

from knowledge_map.io import write_json
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings, read_titles_ids
from knowledge_map.placement import place_questions
from knowledge_map.questions import attach_sources, load_questions, read_question_embeddings, source_rows
from knowledge_map.similarity import dissimilarity_unit
from knowledge_map.workflow import run_rule


def main(snakemake):
    questions_path = snakemake.input.questions or None  # none: the packaged set
    questions = load_questions(questions_path)
    question_embeddings, _ = read_question_embeddings(snakemake.input.question_embeddings, snakemake.input.embeddings,
                                                      questions)
    titles, ids = read_titles_ids(snakemake.input.embeddings)
    # Source articles by id, or by a title only one article has (refused when ambiguous).
    rows = source_rows(questions, ids, titles, str(questions_path or "the packaged questions"))
    embeddings = read_embeddings(snakemake.input.embeddings)
    xy, _ = read_coords(snakemake.input.coords)
    placed = place_questions(questions, question_embeddings, embeddings, xy, titles, **snakemake.params.placement,
                             unit=dissimilarity_unit(embeddings))
    attach_sources(placed, rows, question_embeddings, embeddings, xy)
    write_json(snakemake.output[0], placed)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
