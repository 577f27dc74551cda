"""Rule site_data: map artifacts -> site/data/ (binary points, titles, detail chunks, labels, questions, manifest)."""

from knowledge_map.corpus import read_corpus
from knowledge_map.mapping import read_coords
from knowledge_map.sitedata import build_site_data
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


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
