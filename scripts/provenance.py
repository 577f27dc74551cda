"""Rule provenance: what made this map -> results/<model>/provenance.json."""

import json

import h5py

from knowledge_map.io import write_json
from knowledge_map.provenance import map_provenance
from knowledge_map.workflow import run_rule


def main(snakemake):
    inputs = dict(snakemake.input.items())
    with open(inputs["corpus_manifest"], encoding="utf-8") as handle:
        manifest = json.load(handle)
    with h5py.File(inputs["shard-0000"], "r") as h5:
        shard_attrs = {key: h5.attrs[key] for key in h5.attrs}
    shard_attrs = {key: value.item() if hasattr(value, "item") else value for key, value in shard_attrs.items()}
    write_json(snakemake.output[0], map_provenance(snakemake.config, manifest, shard_attrs, inputs))


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
