"""Rule cell_labels: map + corpus + the articles' model -> results/<model>/map/cell_labels.json."""

from knowledge_map.corpus import read_corpus
from knowledge_map.embed import text_embedder
from knowledge_map.identity import same_space
from knowledge_map.io import write_json
from knowledge_map.label_quality import label_metrics
from knowledge_map.labels import RULE_KEYS, cell_labels
from knowledge_map.mapping import read_coords
from knowledge_map.merge import read_attrs, read_embeddings
from knowledge_map.models import resolve_prompt
from knowledge_map.workflow import run_rule


def main(snakemake):
    params = snakemake.params.labels
    model_name = snakemake.params.model
    table = read_corpus(snakemake.input.corpus, columns=("id", "title", "text"))
    xy, _ = read_coords(snakemake.input.coords)
    prompt = resolve_prompt(model_name, snakemake.params.prompt)
    max_seq_length = snakemake.params.max_seq_length
    # Names are few and short: embed them on the CPU, in float32, wherever this rule runs (a hub model is
    # downloaded here, so its files' digest is known below).
    embed = text_embedder(model_name, max_seq_length, prompt, snakemake.params.backend, snakemake.input.corpus,
                          snakemake.params.cache_dir)
    # Names are chosen in the articles' embedding space: the same model files, prompt and length.
    space = same_space(read_attrs(snakemake.input.embeddings), snakemake.input.embeddings, model_name, prompt, max_seq_length)
    embeddings = read_embeddings(snakemake.input.embeddings)
    titles = table.column("title").to_pylist()
    labels = cell_labels(
        params["levels"],
        xy,
        embeddings,
        table.column("text").to_pylist(),
        table.column("id").to_pylist(),
        titles,
        n_keywords=params["keywords"],
        n_top=params["top_articles"],
        rules={key: params[key] for key in RULE_KEYS},
        embed=embed,
    )
    labels["names_model"] = space
    # The label measure (knowledge_map.label_quality) with the model already loaded here; map_metrics copies it
    # into metrics.json without loading the model again.
    labels["quality"] = label_metrics(labels, xy, embeddings, embed, titles)
    write_json(snakemake.output[0], labels)


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
