"""Rule site_data: map artifacts -> site/data/<model>/ (binary points, titles, detail chunks, labels, questions,
manifest), then site/data/index.json rewritten to list it beside the other models' maps."""

from knowledge_map.corpus import read_corpus
from knowledge_map.mapping import read_coords
from knowledge_map.sitedata import build_site_data, write_site_index
from knowledge_map.workflow import run_rule


def main(snakemake):
    xy, _ = read_coords(snakemake.input.coords)
    build_site_data(
        dict(snakemake.output.items()),
        read_corpus(snakemake.input.corpus),
        xy,
        snakemake.input.labels,
        snakemake.input.questions,
        snakemake.input.metrics,
        model=snakemake.params.model,
        heatmap=snakemake.params.heatmap,
        site=snakemake.params.site,
        source=snakemake.params.source,
        lists_path=snakemake.input.knowledge_lists,
        calibration_path=snakemake.input.calibration,
        attribution=snakemake.params.attribution,
    )
    write_site_index(snakemake.params.index)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
