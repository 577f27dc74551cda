"""Corpus loading, validation, normalisation and shard slicing."""

from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from knowledge_map.corpus import (
    CORPUS_COLUMNS,
    find_problems,
    load_corpus,
    load_vital_articles,
    read_corpus_rows,
    read_corpus_slice,
    shard_bounds,
    wikipedia_url,
    write_corpus,
)
from knowledge_map.errors import KnowledgeMapError

GOOD = [
    {"id": "a", "url": "https://example.org/a", "title": "Alpha", "text": "First article."},
    {"id": "b", "url": "https://example.org/b", "title": "Beta", "text": "Second article."},
    {"id": "c", "url": "https://example.org/c", "title": "Gamma", "text": "Third article."},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_vital_articles_are_the_embedded_default():
    records = load_vital_articles()
    assert len(records) == 10033
    assert len({r["id"] for r in records}) == 10033
    assert not find_problems(records, "vital")
    first = records[0]
    assert first["url"] == wikipedia_url(first["title"])
    assert first["topic"]


def test_wikipedia_url_keeps_parentheses_and_quotes_the_rest():
    assert wikipedia_url("Mercury (planet)") == "https://en.wikipedia.org/wiki/Mercury_(planet)"
    assert wikipedia_url("Zürich") == "https://en.wikipedia.org/wiki/Z%C3%BCrich"


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".pkl"])
def test_each_format_loads_to_the_same_table(tmp_path, suffix):
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, GOOD)
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(GOOD), path)
    else:
        path.write_bytes(pickle.dumps(GOOD))
    table = load_corpus("file", path, allow_pickle=True)
    assert table.column_names == list(CORPUS_COLUMNS)
    assert table.column("row").to_pylist() == [0, 1, 2]
    assert table.column("id").to_pylist() == ["a", "b", "c"]
    assert table.column("topic").to_pylist() == [None, None, None]


def test_limit_keeps_the_first_rows(tmp_path):
    table = load_corpus("file", write_jsonl(tmp_path / "c.jsonl", GOOD), limit=2)
    assert table.column("id").to_pylist() == ["a", "b"]


def test_a_file_corpus_links_only_its_own_urls(tmp_path, caplog):
    """No link is made up from a title (it would send a private document's title to Wikipedia); a url the page
    will not link (not http(s)) is reported once."""
    records = [{"id": "x", "title": "Big Bang", "text": "t"}, {"id": "y", "title": "Y", "text": "t", "url": ""},
               {"id": "z", "title": "Z", "text": "t", "url": "doi:10.1/x"}, {"id": "w", "title": "W", "text": "t", "url": "https://e.org/w"}]
    table = load_corpus("file", write_jsonl(tmp_path / "c.jsonl", records))
    assert table.column("url").to_pylist() == [None, None, "doi:10.1/x", "https://e.org/w"]
    (record,) = caplog.records
    assert "1 record(s) have a url that is not http(s), e.g. record 2: 'doi:10.1/x'" in record.getMessage()


def test_integer_ids_and_a_byte_order_mark_are_read(tmp_path):
    """pandas writes a numeric id column as integers; Windows editors start UTF-8 files with a byte-order mark."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(json.dumps({"id": i, "title": f"T{i}", "text": "t"}).encode() for i in (7, 8)))
    assert load_corpus("file", path).column("id").to_pylist() == ["7", "8"]
    path.write_text("\n".join(json.dumps(r) for r in [{"id": 7, "title": "A", "text": "t"}, {"id": "7", "title": "B", "text": "t"}]))
    with pytest.raises(KnowledgeMapError, match="record 1 \\(id='7'\\): field 'id' duplicates record 0"):
        load_corpus("file", path)
    path.write_text(json.dumps({"id": True, "title": "A", "text": "t"}))
    with pytest.raises(KnowledgeMapError, match="field 'id' must be a string, got bool"):
        load_corpus("file", path)


def test_parquet_with_invalid_utf8_strings_is_one_line(tmp_path):
    """A file another tool wrote with bytes that are not UTF-8 in a string column (Arrow does not check on write)."""
    path = tmp_path / "c.parquet"
    bad = pa.array([b"\xffab"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": bad, "title": ["T"], "text": ["t"]}), path)
    with pytest.raises(KnowledgeMapError) as error:
        load_corpus("file", path)
    assert str(error.value).startswith(f"{path}: a string column is not valid UTF-8") and "\n" not in str(error.value)


def test_pickle_is_refused_without_opt_in_and_never_opened(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "wikipedia.pkl"
    path.write_bytes(pickle.dumps([Payload()]))
    with pytest.raises(KnowledgeMapError, match="allow_pickle: true"):
        load_corpus("file", path)
    assert not marker.exists()


def test_unknown_format_is_refused(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_text("id,title\n")
    with pytest.raises(KnowledgeMapError, match="unsupported corpus format '.csv'"):
        load_corpus("file", path)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "the corpus is empty"),
        ([{"id": "a", "title": "", "text": "x"}], r"record 0 \(id='a'\): field 'title' is empty"),
        ([{"id": "a", "text": "x"}], r"record 0 \(id='a'\): field 'title' is missing"),
        ([{"id": "a", "title": "A", "text": "   "}], r"record 0 \(id='a'\): field 'text' is empty"),
        ([{"id": 7.0, "title": "A", "text": "x"}], r"record 0 \(id=7.0\): field 'id' must be a string, got float"),
        ([{"id": "a", "title": "A", "text": "x", "topic": float("nan")}], r"field 'topic' must be a string or null, got NaN"),
        (
            [{"id": "a", "title": "A", "text": "x"}, {"id": "a", "title": "B", "text": "y"}],
            r"record 1 \(id='a'\): field 'id' duplicates record 0",
        ),
        ([{"id": "a", "title": "A", "text": "x", "topic": 3}], "field 'topic' must be a string or null"),
        (["just a string"], "record 0: expected an object"),
    ],
)
def test_bad_records_get_one_line_errors_naming_record_and_field(tmp_path, records, message):
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(KnowledgeMapError, match=message) as info:
        load_corpus("file", path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a", "title": "A", "text": "x"}\n{"id": "b", "title": "B\xff", "text": "y"}\n')
    with pytest.raises(KnowledgeMapError, match="line 2: not valid UTF-8"):
        load_corpus("file", path)


def test_all_problems_are_listed_not_just_the_first():
    problems = find_problems([{"id": "a", "title": "", "text": ""}, {"id": "a", "title": "T", "text": "x"}], "f")
    assert len(problems) == 3


def test_error_counts_further_problems(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "title": "", "text": ""}])
    with pytest.raises(KnowledgeMapError, match="and 1 more problems"):
        load_corpus("file", path)


def test_unicode_and_large_articles_are_kept_intact(tmp_path):
    big = "word " * 200_000
    records = [{"id": "1", "title": "القاهرة", "text": big}, {"id": "2", "title": "東京 🗼", "text": "Tokyo."}]
    table = load_corpus("file", write_jsonl(tmp_path / "c.jsonl", records))
    assert table.column("title").to_pylist() == ["القاهرة", "東京 🗼"]
    assert table.column("text").to_pylist()[0] == big


@pytest.mark.parametrize(("n", "shards"), [(10, 3), (3, 5), (10033, 4), (0, 2), (7, 7)])
def test_shards_cover_every_row_once_in_order(n, shards):
    bounds = [shard_bounds(n, shards, i) for i in range(shards)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_shard_index_out_of_range_is_refused():
    with pytest.raises(ValueError):
        shard_bounds(10, 3, 3)


def test_slice_reads_only_the_row_groups_it_needs(tmp_path, monkeypatch):
    import knowledge_map.corpus as corpus

    monkeypatch.setattr(corpus, "ROW_GROUP_SIZE", 4)
    records = [{"id": str(i), "title": f"T{i}", "text": f"text {i}"} for i in range(11)]
    path = tmp_path / "corpus.parquet"
    write_corpus(load_corpus("file", write_jsonl(tmp_path / "c.jsonl", records)), path)
    assert pq.ParquetFile(path).num_row_groups == 3
    part = read_corpus_slice(path, 5, 9)
    assert part.column("row").to_pylist() == [5, 6, 7, 8]
    assert read_corpus_slice(path, 3, 3).num_rows == 0


def test_corpus_file_is_byte_identical_for_identical_input(tmp_path):
    table = load_corpus("file", write_jsonl(tmp_path / "c.jsonl", GOOD))
    write_corpus(table, tmp_path / "one.parquet")
    write_corpus(table, tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_sampled_rows_come_back_in_the_asked_order_from_several_row_groups(tmp_path):
    """The int8 engine's sample reads only its rows; its texts, and so its model key, are the whole table's."""
    from knowledge_map.corpus import document_text, read_corpus
    from knowledge_map.quantize import Int8Settings, corpus_plan, plan_from_texts

    path = tmp_path / "corpus.parquet"
    write_corpus(load_corpus("vital-articles", limit=5000), path)
    assert pq.ParquetFile(path).num_row_groups == 3
    rows = [4999, 0, 2048, 2047, 17, 4096, 17]
    table = read_corpus(path, columns=("id", "title"))
    got = read_corpus_rows(path, rows, columns=("id", "title"))
    assert got.to_pylist() == table.take(pa.array(rows)).to_pylist()
    assert read_corpus_rows(path, [], columns=("id",)).num_rows == 0
    with pytest.raises(ValueError, match="rows outside"):
        read_corpus_rows(path, [5000])
    settings = Int8Settings(300, 500)
    whole = read_corpus(path, columns=("title", "text"))
    texts = [document_text(t, x) for t, x in zip(whole.column("title").to_pylist(), whole.column("text").to_pylist())]
    expected = plan_from_texts(texts, settings)
    plan = corpus_plan(str(path), settings)
    assert plan.calibration == expected.calibration and plan.guard == expected.guard


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # Python refuses integers over 4,300 digits, and recurses once per nesting level: both were tracebacks.
        ("long.jsonl", '{"id": "a", "title": "A", "text": "x", "n": ' + "9" * 5000 + "}\n",
         r"long.jsonl: line 1: invalid JSON: a number too long to read"),
        ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", r"deep.jsonl: line 1: invalid JSON: nested too deeply"),
        # Parsers keep the last of a repeated key silently: this record read as an empty article.
        ("twice.jsonl", '{"id": "a", "title": "A", "text": "x", "text": ""}\n',
         r"twice.jsonl: line 1: invalid JSON: key 'text' appears twice in one object"),
        ("mac.jsonl", '{"id": "a", "title": "A", "text": "x"}\r{"id": "b", "title": "B", "text": "y"}\r',
         r"mac.jsonl: line 1: invalid JSON at column 40: Extra data \(its lines end in a bare CR"),
        ("cut.jsonl", '{"id": "a", "title": "A", "text": "x"}\n{"id": "b"\n',
         r"cut.jsonl: line 2: invalid JSON at column 12: Expecting ',' delimiter"),
        ("data.parquet", None, r"data.parquet: is a folder, not a corpus file \(a Parquet dataset written in parts"),
    ],
)
def test_unreadable_corpus_files_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
        (path / "part-0000.parquet").write_bytes(b"")
    else:
        path.write_text(content)
    with pytest.raises(KnowledgeMapError, match=message):
        load_corpus("file", path)


def test_a_blank_topic_is_no_topic(tmp_path):
    """A topic of spaces would be a blank legend entry with its own colour."""
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({**r, "topic": t}) for r, t in zip(GOOD, ["  ", " Physics ", None])))
    assert load_corpus("file", path).column("topic").to_pylist() == [None, "Physics", None]


def test_a_title_of_zero_width_characters_is_empty(tmp_path):
    """It shows nothing on the map, the card or the search: refused as empty, saying why."""
    problems = find_problems([{**GOOD[0], "title": "\u200b\u200b"}], "c.jsonl")
    assert problems == ["c.jsonl: record 0 (id='a'): field 'title' is empty (it holds only characters that show nothing)"]


def test_a_folder_given_as_the_vital_articles_file_is_one_line(tmp_path):
    with pytest.raises(KnowledgeMapError, match=r"cannot read the corpus file \(Is a directory\)"):
        load_corpus("vital-articles", tmp_path)
