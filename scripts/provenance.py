"""Rule provenance: what made this map -> results/<model>/provenance.json."""

from knowledge_map.io import read_json, write_json
from knowledge_map.merge import read_attrs
from knowledge_map.provenance import map_provenance
from knowledge_map.workflow import run_rule


def main(snakemake):
    inputs = dict(snakemake.input.items())
    manifest = read_json(inputs["corpus_manifest"])
    # Shard 0's record, with every shard's compile record and software from the merged matrix.
    merged = read_attrs(inputs["embeddings"])
    shard_attrs = {**read_attrs(inputs["shard-0000"]), "shard_compiled": merged.get("shard_compiled", ""),
                   "shard_software": merged.get("shard_software", "")}
    write_json(snakemake.output[0], map_provenance(snakemake.config, manifest, shard_attrs, inputs))


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
