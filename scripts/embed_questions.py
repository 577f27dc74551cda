"""Rule embed_questions: questions -> results/<model>/questions.h5 (one embedding per question)."""

from knowledge_map.embed import text_embedder
from knowledge_map.models import resolve_prompt
from knowledge_map.questions import load_questions, question_keys, question_text, write_question_embeddings
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params
    questions = load_questions(snakemake.input.questions or None)  # none: the packaged set
    # Questions are few: embed them on the CPU, in float32, wherever this rule runs.
    prompt = resolve_prompt(params.model, params.prompt)
    embed = text_embedder(params.model, params.max_seq_length, prompt, params.backend, snakemake.input.corpus,
                          params.cache_dir)
    embeddings = embed([question_text(q) for q in questions])
    write_question_embeddings(snakemake.output[0], embeddings, question_keys(questions), {"model": params.model})


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
