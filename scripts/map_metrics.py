"""Rule map_metrics: map fidelity, placement, knowledge-list and label figures -> results/<model>/map/metrics.json."""

from knowledge_map.corpus import read_corpus
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import read_json, write_json
from knowledge_map.knowledge import read_lists
from knowledge_map.mapping import read_coords
from knowledge_map.merge import engine_record, read_attrs, read_embeddings
from knowledge_map.metrics import map_metrics
from knowledge_map.questions import read_question_embeddings
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params.metrics
    corpus = read_corpus(snakemake.input.corpus, columns=("topic",))
    topics = corpus.column("topic").to_pylist()
    xy, coord_attrs = read_coords(snakemake.input.coords)
    embeddings = read_embeddings(snakemake.input.embeddings)
    placed = read_json(snakemake.input.questions)
    metrics = map_metrics(
        embeddings,
        xy,
        topics,
        placed,
        k=params["k"],
        sample=params["sample"],
        ignore_topics=tuple(params["ignore_topics"]),
        question_embeddings=read_question_embeddings(snakemake.input.question_embeddings, snakemake.input.embeddings)[0],
    )
    metrics["knowledge_sparse_vs_full"] = read_lists(snakemake.input.knowledge_lists)[1]["sparse_vs_full"]
    attrs = read_attrs(snakemake.input.embeddings)
    metrics["engine"] = engine_record(attrs)
    shard_seconds = attrs.get("shard_elapsed_seconds", [])
    metrics["timings_seconds"]["embed_shards_total"] = round(float(sum(shard_seconds)), 3)
    metrics["timings_seconds"]["umap"] = float(coord_attrs.get("elapsed_seconds", float("nan")))
    # The label measure, computed by cell_labels with the articles' model (knowledge_map.label_quality).
    labels = read_json(snakemake.input.labels)
    quality = labels.get("quality") if isinstance(labels, dict) else None
    if quality is None:
        raise KnowledgeMapError(
            f"{snakemake.input.labels}: no 'quality' (the label measure); it was made by an older version: "
            f"snakemake --forcerun cell_labels"
        )
    metrics["labels"] = quality
    write_json(snakemake.output[0], metrics)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
