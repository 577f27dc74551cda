"""Rule cell_labels: map + corpus -> results/<model>/map/cell_labels.json."""

from knowledge_map.corpus import document_text, read_corpus
from knowledge_map.io import write_json
from knowledge_map.labels import cell_labels
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_embeddings
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params.labels
    table = read_corpus(snakemake.input.corpus, columns=("id", "title", "text"))
    titles = table.column("title").to_pylist()
    documents = [document_text(t, x) for t, x in zip(titles, table.column("text").to_pylist())]
    xy, _ = read_coords(snakemake.input.coords)
    labels = cell_labels(
        params["levels"],
        xy,
        read_embeddings(snakemake.input.embeddings),
        documents,
        table.column("id").to_pylist(),
        titles,
        n_keywords=params["keywords"],
        n_top=params["top_articles"],
    )
    write_json(snakemake.output[0], labels)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
