"""Site data: binary points, chunked details, trimmed labels and questions, the manifest."""

from __future__ import annotations

import fcntl
import json
import shutil

import numpy as np
import pytest

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.knowledge import NeighbourLists
from knowledge_map.sitedata import (
    MAX_TOPICS,
    NO_TOPIC,
    dequantise,
    detail_chunks,
    excerpt,
    points_bytes,
    points_layout,
    quantise,
    site_labels,
    site_questions,
    topic_codes,
    write_site_data,
    write_site_index,
)
from knowledge_map.textsafety import safe_url

HEATMAP = {"space": "embedding", "temperature": 0.1, "sigma": 0.15, "prior_weight": 0.003, "raster": 64, "bandwidth": 2.0}


def lists_for(n_questions: int, n_articles: int, k: int = 3) -> NeighbourLists:
    """Question q's list: articles q, q+1, ... (mod n) with weights 1, 1/2, 1/4, ..."""
    rows = np.array([(q + j) % n_articles for q in range(n_questions) for j in range(k)], dtype="<u4")
    weights = np.tile(0.5 ** np.arange(k), n_questions).astype("<f4")
    return NeighbourLists(np.arange(n_questions + 1, dtype="<u4") * k, rows, weights, n_articles)


def test_quantisation_error_is_below_one_65535th():
    """uint16 coordinates round-trip within half a quantum; 0 and 1 stay exact."""
    xy = np.random.default_rng(0).uniform(size=(1000, 2))
    xy[0], xy[1] = [0, 0], [1, 1]
    q = quantise(xy)
    assert q.dtype == np.dtype("<u2")
    assert np.abs(dequantise(q) - xy).max() <= 0.5 / 65535 + 1e-12
    assert q[0].tolist() == [0, 0] and q[1].tolist() == [65535, 65535]


def test_quantise_refuses_nan():
    with pytest.raises(KnowledgeMapError, match="NaN"):
        quantise(np.array([[0.1, np.nan]]))


def test_points_bytes_follow_the_layout():
    """x block, y block, topic block at the offsets the manifest announces."""
    q = np.array([[1, 2], [65535, 7], [300, 40000]], dtype="<u2")
    codes = np.array([0, 5, NO_TOPIC], dtype=np.uint8)
    data = points_bytes(q, codes)
    layout = points_layout(3)
    assert len(data) == layout["bytes"] == 15
    assert np.frombuffer(data, "<u2", 3, layout["x_offset"]).tolist() == [1, 65535, 300]
    assert np.frombuffer(data, "<u2", 3, layout["y_offset"]).tolist() == [2, 7, 40000]
    assert np.frombuffer(data, np.uint8, 3, layout["topic_offset"]).tolist() == [0, 5, NO_TOPIC]


def test_topic_codes_sorted_names_and_missing_topics():
    codes, names = topic_codes(["b", None, "a", "b", ""])
    assert names == ["a", "b"]
    assert codes.tolist() == [1, NO_TOPIC, 0, 1, NO_TOPIC]


def test_rare_topics_share_other_beyond_the_legend_limit():
    """With more topics than MAX_TOPICS the rarest become "Other"; codes stay below 255."""
    topics = [f"t{i:02d}" for i in range(30) for _ in range(30 - i)]
    codes, names = topic_codes(topics)
    assert len(names) == MAX_TOPICS and names[-1] == "Other"
    assert names[codes[topics.index("t00")]] == "t00"
    assert names[codes[topics.index("t29")]] == "Other"
    # A real topic named "Other" joins the overflow: one legend entry, not two of different colours.
    codes, names = topic_codes(["Other"] * 40 + topics)
    assert names.count("Other") == 1 and names[codes[0]] == "Other" == names[codes[-1]]
    assert len(names) == MAX_TOPICS  # and no legend slot is lost to it


def test_safe_url_allows_only_http():
    assert safe_url("https://en.wikipedia.org/wiki/X") == "https://en.wikipedia.org/wiki/X"
    assert safe_url("HTTP://example.org") == "HTTP://example.org"
    for bad in ("javascript:alert(1)", " javascript:alert(1)", "data:text/html,x", "", None):
        assert safe_url(bad) is None


def test_excerpt_cuts_at_a_word():
    assert excerpt("short", 10) == "short"
    assert excerpt("one two three four", 9) == "one two…"


def test_detail_chunks_cover_every_row_once():
    urls = [f"https://x/{i}" for i in range(7)]
    chunks = list(detail_chunks(urls, ["t"] * 7, chunk_rows=3, excerpt_chars=5))
    assert [c["start"] for c in chunks] == [0, 3, 6]
    assert sum(len(c["url"]) for c in chunks) == 7
    assert chunks[2]["url"] == ["https://x/6"]


def test_site_labels_keep_non_empty_cells_coarse_first():
    labels = {
        "levels": [
            {"n": 2, "cells": [
                {"gx": 0, "gy": 0, "x": 0.1, "y": 0.2, "label": "A", "article_count": 3,
                 "keywords": ["k1", "k2", "k3", "k4"]},
                {"gx": 1, "gy": 0, "label": None, "article_count": 0, "keywords": []},
            ]},
            {"n": 1, "cells": [{"gx": 0, "gy": 0, "label": "B", "article_count": 3, "keywords": []}]},
        ]
    }
    out = site_labels(labels)
    assert [level["n"] for level in out["levels"]] == [1, 2]
    assert out["levels"][1]["cells"] == [
        {"gx": 0, "gy": 0, "x": 0.1, "y": 0.2, "label": "A", "count": 3, "keywords": ["k1", "k2", "k3"]}
    ]
    # A file without article positions places the label at the cell centre.
    assert (out["levels"][0]["cells"][0]["x"], out["levels"][0]["cells"][0]["y"]) == (0.5, 0.5)


def test_site_questions_require_a_position():
    q = {"question": "Q?", "options": ["a", "b", "c", "d"], "correctIndex": 2, "x": 0.1, "y": 0.2, "rank_map": 3}
    assert site_questions([q])[0] == {
        "id": None, "difficulty": 0.0, "question": "Q?", "options": ["a", "b", "c", "d"], "correctIndex": 2,
        "topic": None, "source_article": None, "x": 0.1, "y": 0.2,
    }
    assert site_questions([{**q, "id": "q7"}], difficulty=[1.5])[0]["difficulty"] == 1.5
    with pytest.raises(KnowledgeMapError, match="question 0"):
        site_questions([{**q, "x": None}])


def test_write_site_data_round_trips(tmp_path):
    """Every file is written; points decode to the coordinates; hostile text stays a string."""
    n = 1203
    rng = np.random.default_rng(3)
    xy = rng.uniform(size=(n, 2)).astype(np.float32)
    titles = [f"<img src=x onerror=alert({i})>" for i in range(n)]
    outputs = {
        key: str(tmp_path / name)
        for key, name in [("points", "points.bin"), ("titles", "titles.json"), ("details", "details"),
                          ("labels", "labels.json"), ("questions", "questions.json"), ("knowledge", "knowledge.bin"),
                          ("manifest", "manifest.json")]
    }
    lists = lists_for(1, n)
    calibration = {"source": "r.csv", "mean_difficulty": 0.25, "questions": [{"id": "0", "difficulty": -0.5}]}

    def write(titles, options=tuple("abcd")):
        return write_site_data(
            outputs, titles, ["javascript:alert(1)"] + [f"https://w/{i}" for i in range(1, n)], ["text"] * n,
            ["A"] * n, xy, {"levels": []},
            [{"question": "Q", "options": list(options), "correctIndex": 0, "x": 0.5, "y": 0.5}],
            {"m": 1}, "model", HEATMAP, {"excerpt_chars": 280, "chunk_rows": 500},
            lists=lists, lists_info={"sparse_vs_full": {"overall": {"mean_abs": 0.001}}}, calibration=calibration,
        )

    manifest = write(titles)
    assert manifest == json.loads((tmp_path / "manifest.json").read_text())
    assert "CC BY-SA 4.0" in manifest["attribution"]
    assert manifest["details"] == {"dir": "details", "chunk_rows": 500, "chunks": 3}
    assert sorted(p.name for p in (tmp_path / "details").iterdir()) == ["00000.json", "00001.json", "00002.json"]
    data = (tmp_path / "points.bin").read_bytes()
    x = np.frombuffer(data, "<u2", n, manifest["points"]["x_offset"]) / 65535
    np.testing.assert_allclose(x, xy[:, 0], atol=1e-5)
    assert json.loads((tmp_path / "titles.json").read_text()) == titles
    first = json.loads((tmp_path / "details/00000.json").read_text())
    assert first["url"][0] is None and first["url"][1] == "https://w/1"
    assert manifest["heatmap"] == {**HEATMAP, "mean_difficulty": 0.25, "calibrated": True,
                                   "sparse_vs_full": {"overall": {"mean_abs": 0.001}}}
    assert json.loads((tmp_path / "questions.json").read_text())[0]["difficulty"] == -0.5
    blob = (tmp_path / "knowledge.bin").read_bytes()
    k = manifest["knowledge"]
    assert len(blob) == k["bytes"] and k["questions"] == 1 and k["entries"] == 3
    np.testing.assert_array_equal(np.frombuffer(blob, "<u4", 3, k["rows_offset"]), lists.rows)
    np.testing.assert_array_equal(np.frombuffer(blob, "<f4", 3, k["weights_offset"]), lists.weights)
    # The build id follows every data file's bytes (the page fetches FILE?v=<build>); the questions key their text.
    rebuilt = write(titles)
    assert rebuilt["build"] == manifest["build"] and len(manifest["build"]) == 16  # same inputs, same build
    retitled = write([*titles[:5], "another title", *titles[6:]])
    assert retitled["build"] != manifest["build"] and retitled["questions_key"] == manifest["questions_key"]
    assert write(titles, "abce")["questions_key"] != manifest["questions_key"]


def test_write_site_data_refuses_lists_of_another_map(tmp_path):
    """Neighbour lists made for another corpus or question set are refused, not drawn."""
    outputs = {key: str(tmp_path / key) for key in ("points", "titles", "details", "labels", "questions", "knowledge", "manifest")}
    args = (outputs, ["a", "b"], ["u", "u"], ["t", "t"], [None, None], np.zeros((2, 2)), {"levels": []},
            [{"question": "Q", "options": ["a", "b"], "correctIndex": 0, "x": 0.5, "y": 0.5}], {}, "m", HEATMAP,
            {"excerpt_chars": 1, "chunk_rows": 1})
    with pytest.raises(KnowledgeMapError, match="knowledge lists do not match"):
        write_site_data(*args, lists=lists_for(1, 3))
    with pytest.raises(KnowledgeMapError, match="knowledge lists do not match"):
        write_site_data(*args, lists=lists_for(2, 2))


def test_write_site_data_refuses_mismatched_lengths(tmp_path):
    with pytest.raises(KnowledgeMapError, match="2 coordinates"):
        write_site_data({}, ["a"], ["u"], ["t"], [None], np.zeros((2, 2)), {"levels": []}, [], {}, "m", HEATMAP,
                        {"excerpt_chars": 1, "chunk_rows": 1})


# ------------------------------------------------------- one folder per map, and the index


def synthetic(data, map_id, n=60, seed=0):
    from knowledge_map.devtools.synthetic import write_synthetic_site

    return write_synthetic_site(data, map_id, n, n_questions=4, seed=seed, neighbours=20)


def listed(data):
    return [(m["id"], m["model"], m["count"]) for m in json.loads((data / "index.json").read_text())["maps"]]


def test_a_second_model_joins_the_index_and_rebuilding_one_keeps_the_other(tmp_path):
    data = tmp_path / "data"
    synthetic(data, "model-b", 80)
    assert listed(data) == [("model-b", "model-b", 80)]
    synthetic(data, "model-a", 60)
    assert listed(data) == [("model-a", "model-a", 60), ("model-b", "model-b", 80)]
    synthetic(data, "model-b", 70, seed=1)  # mapped again
    assert listed(data) == [("model-a", "model-a", 60), ("model-b", "model-b", 70)]
    assert json.loads((data / "model-a" / "manifest.json").read_text())["count"] == 60  # untouched


def test_the_index_lists_only_complete_maps_of_this_format(tmp_path):
    """A folder without a manifest (being written, or half removed), an old format, a broken manifest,
    or a name the page would refuse is not listed; a folder removed by hand leaves on the next write."""
    data = tmp_path / "data"
    synthetic(data, "good")
    manifest = json.loads((data / "good" / "manifest.json").read_text())
    (data / "half").mkdir()
    (data / "half" / "points.bin").write_bytes(b"")
    for name, text in (("old", json.dumps({**manifest, "format_version": 1})), ("broken", "{not json"),
                       (".hidden", json.dumps(manifest)), ("a b", json.dumps(manifest))):
        (data / name).mkdir()
        (data / name / "manifest.json").write_text(text)
    (data / "manifest.json").write_text(json.dumps(manifest))  # the flat layout of earlier versions
    assert write_site_index(data / "index.json")["maps"] == [{"id": "good", "model": "good", "count": 60}]
    shutil.rmtree(data / "good")
    assert write_site_index(data / "index.json")["maps"] == []


def test_the_index_is_scanned_and_written_under_its_lock(tmp_path, monkeypatch):
    """Jobs of two models take turns: while one scans and writes, another cannot take the lock."""
    import knowledge_map.sitedata as sitedata

    data = tmp_path / "data"
    synthetic(data, "model-a")
    held = []
    scan = sitedata.site_index

    def checking_scan(folder):
        with open(data / ".index.lock") as other:  # another open file: another job's lock attempt
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return scan(folder)

    monkeypatch.setattr(sitedata, "site_index", checking_scan)
    write_site_index(data / "index.json")
    assert held == [True]
