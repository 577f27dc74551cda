"""Rule embed_questions: questions -> results/<model>/questions.h5 (one embedding per question)."""

from knowledge_map.embed import text_embedder
from knowledge_map.identity import same_space
from knowledge_map.merge import read_attrs
from knowledge_map.models import resolve_prompt
from knowledge_map.questions import (
    load_questions,
    question_keys,
    question_text,
    question_texts_digest,
    write_question_embeddings,
)
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params
    questions = load_questions(snakemake.input.questions or None)  # none: the packaged set
    prompt = resolve_prompt(params.model, params.prompt)
    # Questions are few: embed them on the CPU, in float32, wherever this rule runs (a hub model is downloaded here).
    embed = text_embedder(params.model, params.max_seq_length, prompt, params.backend, snakemake.input.corpus,
                          params.cache_dir)
    # Questions are compared with the articles: embedded in their space (model files, prompt, length), recorded.
    space = same_space(read_attrs(snakemake.input.embeddings), snakemake.input.embeddings, params.model, prompt,
                       params.max_seq_length)
    embeddings = embed([question_text(q) for q in questions])
    write_question_embeddings(snakemake.output[0], embeddings, question_keys(questions),
                              {**space, "texts_sha256": question_texts_digest(questions)})


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
