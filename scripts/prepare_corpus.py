"""Rule prepare_corpus: any supported corpus -> results/corpus.parquet + manifest."""

from knowledge_map.corpus import corpus_manifest, load_corpus, vital_articles_path, write_corpus, write_manifest
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params
    # No input file: the packaged default corpus (see rules/common.smk).
    path = snakemake.input.corpus or str(vital_articles_path())
    table = load_corpus(params.source, path, allow_pickle=params.allow_pickle, limit=params.limit)
    write_corpus(table, snakemake.output.corpus)
    write_manifest(corpus_manifest(table, path, params.source, params.limit), snakemake.output.manifest)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
