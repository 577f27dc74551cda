"""Rule prepare_corpus: any supported corpus -> results/corpus.parquet + manifest."""

from knowledge_map.corpus import corpus_manifest, load_corpus, write_corpus, write_manifest
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params
    path = snakemake.input[0]
    table = load_corpus(params.source, path, allow_pickle=params.allow_pickle, limit=params.limit)
    write_corpus(table, snakemake.output.corpus)
    write_manifest(corpus_manifest(table, path, params.source, params.limit), snakemake.output.manifest)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
