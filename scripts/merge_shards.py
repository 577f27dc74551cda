"""Rule merge_shards: every shard -> results/<model>/embeddings.h5 in corpus row order."""

import json

from knowledge_map.corpus import corpus_row_count, read_corpus_slice
from knowledge_map.identity import file_sha256
from knowledge_map.merge import merge_shards
from knowledge_map.provenance import provenance
from knowledge_map.workflow import run_rule


def main(snakemake):
    corpus = snakemake.input.corpus
    table = read_corpus_slice(corpus, 0, corpus_row_count(corpus), columns=("id", "title"))
    merge_shards(
        list(snakemake.input.shards),
        snakemake.output[0],
        ids=table.column("id").to_pylist(),
        titles=table.column("title").to_pylist(),
        model=snakemake.params.model,
        attrs={"provenance": json.dumps(provenance(snakemake.config), sort_keys=True)},
        corpus_sha256=file_sha256(corpus),
    )


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
