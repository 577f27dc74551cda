"""``knowledge-map`` / ``python -m knowledge_map``: tools around the workflow.

- ``inspect [PATH]``: counts, fields, text lengths and every problem the
  loader would refuse, before a long run.
- ``convert IN OUT.parquet``: validate a corpus and write it as Parquet
  (the safe way to stop depending on a pickle).
- ``site-index [DIR]``: rewrite ``DIR/index.json`` (default ``site/data``) from
  the maps in ``DIR``, e.g. after removing a model's folder by hand.
- ``progress [WORKDIR] [--watch S]``: each shard's state, host, GPU, rate
  and ETA during a run (:mod:`knowledge_map.cluster.progress`).
"""

from __future__ import annotations

import argparse
import json
import sys

import pyarrow.parquet as pq

from knowledge_map.errors import KnowledgeMapError


def cmd_inspect(args: argparse.Namespace) -> int:
    from knowledge_map.corpus_check import format_summary, load_for_inspection, summarise

    records, source = load_for_inspection(args.path, args.allow_pickle)
    summary = summarise(records, source)
    if args.json:
        print(json.dumps(summary, indent=1, ensure_ascii=False))
    else:
        print(format_summary(summary, None if args.all else 50))
    return 1 if summary["problems"] else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from knowledge_map.corpus import load_corpus
    from knowledge_map.io import atomic_path

    if not args.output.endswith(".parquet"):
        raise KnowledgeMapError(f"{args.output}: the output of convert must be a .parquet file")
    table = load_corpus("file", args.input, allow_pickle=args.allow_pickle)
    try:
        with atomic_path(args.output) as tmp:  # Ctrl-C or a full disk leaves no half-written Parquet
            pq.write_table(table.drop_columns(["row"]), tmp, compression="zstd")
    except OSError as exc:  # a missing folder is made; a folder of that name or no permission is not writable
        raise KnowledgeMapError(f"{args.output}: cannot write the Parquet file ({exc.strerror or exc})") from exc
    print(f"wrote {table.num_rows} articles to {args.output}")
    return 0


def cmd_site_index(args: argparse.Namespace) -> int:
    from pathlib import Path

    from knowledge_map.sitedata import write_site_index

    index = write_site_index(Path(args.dir) / "index.json")
    print(f"{args.dir}/index.json: {', '.join(m['id'] for m in index['maps']) or 'no maps'}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="knowledge-map", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="summarise a corpus and list every problem")
    inspect.add_argument("path", nargs="?", help=".parquet, .jsonl or .pkl corpus (default: the vital articles)")
    inspect.add_argument("--allow-pickle", action="store_true", help="open a .pkl (unpickling runs code)")
    inspect.add_argument("--all", action="store_true", help="list every problem, not the first 50")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=cmd_inspect)
    convert = sub.add_parser("convert", help="validate a corpus and write it as Parquet")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--allow-pickle", action="store_true", help="open a .pkl (unpickling runs code)")
    convert.set_defaults(func=cmd_convert)
    site_index = sub.add_parser("site-index", help="list the maps in site/data again (after removing one)")
    site_index.add_argument("dir", nargs="?", default="site/data", help="the site's data folder (default: site/data)")
    site_index.set_defaults(func=cmd_site_index)
    sub.add_parser("progress", help="shard states, rates and ETAs of a run (see `progress --help`)", add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["progress"]:
        from knowledge_map.cluster.progress import main as progress_main

        return progress_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KnowledgeMapError as error:
        print(f"knowledge-map error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
