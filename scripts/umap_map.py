"""Rule umap_map: merged embeddings -> results/<model>/map/coords.h5 and reducer.pkl."""

import json
import time

from knowledge_map.mapping import fit_umap, normalise_coords, save_reducer, write_coords
from knowledge_map.merge import read_embeddings, read_titles_ids
from knowledge_map.provenance import provenance
from knowledge_map.workflow import run_rule


def main(snakemake):
    embeddings = read_embeddings(snakemake.input[0])
    _, ids = read_titles_ids(snakemake.input[0])
    started = time.monotonic()
    reducer, raw = fit_umap(embeddings, **snakemake.params.umap)
    xy, bounds = normalise_coords(raw)
    attrs = {"umap": json.dumps(snakemake.params.umap, sort_keys=True),
             "provenance": json.dumps(provenance(snakemake.config), sort_keys=True),
             "elapsed_seconds": round(time.monotonic() - started, 3)}
    write_coords(snakemake.output.coords, raw, xy, ids, bounds, attrs)
    save_reducer(reducer, snakemake.output.reducer)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
