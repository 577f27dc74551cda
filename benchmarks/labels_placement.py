"""Cell labels and question placement at 250,000 articles: seconds of each step (goal: under a minute).

Articles are the 10,033 vital-article texts repeated to ``--n`` rows (real
vocabulary and lengths), with seeded random unit embeddings (384-d) and map
positions; questions are the shipped set with seeded random embeddings.
Label levels are the config's.  One process, steps timed one after the other.
Labels are timed twice: first with the text rules alone, then with the
embedding model choosing among names (the workflow's way; ``--model``, on the
CPU, float32, as the rule loads it; the seconds spent embedding names are
also reported apart).  The model's load time is not counted.

    python benchmarks/labels_placement.py --quick    # 50,000 articles
    python benchmarks/labels_placement.py            # 250,000 articles
    python benchmarks/labels_placement.py --compare widen=0 widen=0,join_coverage=0   # and these, medians of 3 rounds

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import numpy as np


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=250_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--compare", nargs="*", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="also time the model's labelling with each of these labels.* settings, in this process")
    parser.add_argument("--repeats", type=int, default=3,
                        help="with --compare: rounds, each timing the defaults and every setting in turn (medians)")
    args = parser.parse_args(argv)
    n = min(args.n, 50_000) if args.quick else args.n

    from knowledge_map.corpus import load_vital_articles
    from knowledge_map.devtools.perf import peak_rss_bytes, timed
    from knowledge_map.embed import text_embedder
    from knowledge_map.labels import cell_labels
    from knowledge_map.models import resolve_prompt
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

    prompt = resolve_prompt(args.model, None)
    # The workflow's engine for label names (no cache: the synthetic corpus has no file to key a record on).
    embed_names = text_embedder(args.model, 256, prompt, "auto", None, None)
    embedded = {"texts": 0, "seconds": 0.0}

    def embed(names):
        seconds, vectors = timed(lambda: embed_names(names))
        embedded["texts"] += len(names)
        embedded["seconds"] += seconds
        return vectors

    cpu = time.process_time()  # CPU seconds too: other jobs sharing the cores inflate wall time
    text_only_s, _ = timed(lambda: cell_labels([5, 10, 20, 40], xy, embeddings, texts, ids, titles))
    cpu, text_only_cpu = time.process_time(), time.process_time() - cpu
    labels_s, _ = timed(lambda: cell_labels([5, 10, 20, 40], xy, embeddings, texts, ids, titles, embed=embed))
    labels_cpu = time.process_time() - cpu
    default_embedded = dict(embedded)
    compared = compare_settings(args.compare, args.repeats, lambda rules: cell_labels(
        [5, 10, 20, 40], xy, embeddings, texts, ids, titles, rules=rules, embed=embed), embedded)
    place_s, _ = timed(lambda: place_questions(questions, question_embeddings, embeddings, xy, titles, 10))
    result = {
        "benchmark": "labels_placement",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "articles": n,
        "questions": len(questions),
        "cell_labels_seconds": round(labels_s, 2),
        "cell_labels_cpu_seconds": round(labels_cpu, 2),
        "embedded_names": default_embedded["texts"],
        "embedding_names_seconds": round(default_embedded["seconds"], 2),
        "cell_labels_text_rules_only_seconds": round(text_only_s, 2),
        "cell_labels_text_rules_only_cpu_seconds": round(text_only_cpu, 2),
        "place_questions_seconds": round(place_s, 2),
        "compared": compared,
        "peak_rss_gb": round(peak_rss_bytes() / 1e9, 3),
    }
    print(json.dumps(result))
    return result


def compare_settings(settings: list[str], repeats: int, label, embedded: dict) -> dict:
    """Median wall and CPU seconds of ``label(rules)`` for the defaults and each ``KEY=VALUE[,KEY=VALUE]`` setting.

    Each round times the defaults and every setting one after the other, so
    a machine that slows down during the run slows all of them alike; names
    embedded are counted in the last round (``embedded`` is the ``embed``
    wrapper's running count).
    """
    if not settings:
        return {}
    from knowledge_map.devtools.perf import timed

    runs = {"defaults": {}} | {
        setting: {key: float(value) if "." in value else int(value)
                  for key, value in (part.split("=", 1) for part in setting.split(","))}
        for setting in settings
    }
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names: dict[str, int] = {}
    for _ in range(repeats):
        for name, rules in runs.items():
            before, cpu = embedded["texts"], time.process_time()
            wall, _ = timed(lambda rules=rules: label(rules))
            seconds[name].append((wall, time.process_time() - cpu))
            names[name] = embedded["texts"] - before
    return {name: {"cell_labels_seconds": round(float(np.median([w for w, _ in times])), 2),
                   "cell_labels_cpu_seconds": round(float(np.median([c for _, c in times])), 2),
                   "embedded_names": names[name], "rounds": len(times)} for name, times in seconds.items()}


if __name__ == "__main__":
    main()
