"""Cell labels and question placement at 250,000 articles: seconds of each step (goal: under a minute).

Articles are the 10,033 vital-article texts repeated to ``--n`` rows (real
vocabulary and lengths), with seeded random unit embeddings (384-d) and map
positions; questions are the shipped set with seeded random embeddings.
Label levels are the config's.  One process, steps timed one after the other.

    python benchmarks/labels_placement.py --quick    # 50,000 articles
    python benchmarks/labels_placement.py            # 250,000 articles

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json

import numpy as np


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=250_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args(argv)
    n = min(args.n, 50_000) if args.quick else args.n

    from knowledge_map.corpus import load_vital_articles
    from knowledge_map.devtools.perf import peak_rss_bytes, timed
    from knowledge_map.labels import cell_labels
    from knowledge_map.placement import place_questions
    from knowledge_map.questions import load_questions

    records = load_vital_articles()
    rows = np.arange(n) % len(records)
    texts = [records[r]["text"] for r in rows]
    titles = [f"{records[r]['title']} ({i})" for i, r in enumerate(rows)]
    ids = [str(i) for i in range(n)]
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((n, args.dim), dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    xy = rng.random((n, 2), dtype=np.float32)
    questions = load_questions()
    question_embeddings = rng.standard_normal((len(questions), args.dim), dtype=np.float32)
    question_embeddings /= np.linalg.norm(question_embeddings, axis=1, keepdims=True)

    labels_s, _ = timed(lambda: cell_labels([5, 10, 20, 40], xy, embeddings, texts, ids, titles))
    place_s, _ = timed(lambda: place_questions(questions, question_embeddings, embeddings, xy, titles, 10))
    result = {
        "benchmark": "labels_placement",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "articles": n,
        "questions": len(questions),
        "cell_labels_seconds": round(labels_s, 2),
        "place_questions_seconds": round(place_s, 2),
        "peak_rss_gb": round(peak_rss_bytes() / 1e9, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
