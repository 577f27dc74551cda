"""Rule cell_labels: map + corpus -> results/<model>/map/cell_labels.json."""

from knowledge_map.corpus import read_corpus
from knowledge_map.io import write_json
from knowledge_map.labels import cell_labels
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params.labels
    table = read_corpus(snakemake.input.corpus, columns=("id", "title", "text"))
    xy, _ = read_coords(snakemake.input.coords)
    labels = cell_labels(
        params["levels"],
        xy,
        read_embeddings(snakemake.input.embeddings),
        table.column("text").to_pylist(),
        table.column("id").to_pylist(),
        table.column("title").to_pylist(),
        n_keywords=params["keywords"],
        n_top=params["top_articles"],
        rules={key: params[key] for key in ("specific_ratio", "join_ratio", "repeat_penalty")},
    )
    write_json(snakemake.output[0], labels)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
