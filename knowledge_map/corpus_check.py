"""Look at a corpus before a long run: counts, fields, text lengths and every problem.

The same checks as the workflow's loader (:func:`knowledge_map.corpus.find_problems`),
but all problems are listed instead of stopping at the first.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from knowledge_map.corpus import find_problems, load_vital_articles, read_records, vital_articles_path


def summarise(records: list[Any], source: str) -> dict[str, Any]:
    """Counts, field coverage, text-length percentiles, topics and the list of problems."""
    fields: Counter[str] = Counter()
    lengths = []
    topics: Counter[str] = Counter()
    for record in records:
        if isinstance(record, dict):
            fields.update(str(key) for key, value in record.items() if value is not None)  # a pickle may hold any key
            if isinstance(record.get("text"), str):
                lengths.append(len(record["text"]))
            if isinstance(record.get("topic"), str):
                topics[record["topic"]] += 1
    percentiles = {}
    if lengths:
        values = np.percentile(lengths, [0, 10, 50, 90, 99, 100])
        percentiles = dict(zip(["min", "p10", "median", "p90", "p99", "max"], (int(v) for v in values)))
    return {
        "source": source,
        "records": len(records),
        "fields": dict(sorted(fields.items())),
        "text_chars": percentiles,
        "text_chars_total": int(sum(lengths)),
        "topics": dict(topics.most_common()),
        "problems": find_problems(records, source),
    }


def load_for_inspection(path: str | None, allow_pickle: bool) -> tuple[list[Any], str]:
    """Raw records of ``path`` (or of the embedded default when None), unvalidated."""
    if path is None:
        return load_vital_articles(), str(vital_articles_path())
    return read_records(path, allow_pickle=allow_pickle), path


def format_summary(summary: dict[str, Any], max_problems: int | None = None) -> str:
    """The summary as readable lines; problems last, all of them unless capped."""
    lines = [f"corpus: {summary['source']}", f"records: {summary['records']}"]
    lines.append("fields: " + ", ".join(f"{k} ({v})" for k, v in summary["fields"].items()))
    if summary["text_chars"]:
        lines.append("text length (chars): " + ", ".join(f"{k} {v}" for k, v in summary["text_chars"].items()))
        lines.append(f"text total (chars): {summary['text_chars_total']}")
    if summary["topics"]:
        lines.append("topics: " + ", ".join(f"{k} ({v})" for k, v in summary["topics"].items()))
    problems = summary["problems"]
    lines.append(f"problems: {len(problems)}" + ("" if problems else " - the workflow will accept this corpus"))
    shown = problems if max_problems is None else problems[:max_problems]
    lines.extend(f"  {p}" for p in shown)
    if len(shown) < len(problems):
        lines.append(f"  ... and {len(problems) - len(shown)} more (use --all)")
    return "\n".join(lines)
