"""Issue 10's bad inputs, one case each: accepted before, then a crash or a silently wrong result."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO, write_jsonl

from knowledge_map.config import validate_config
from knowledge_map.corpus import load_corpus
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.questions import load_questions, source_rows

GOOD = [
    {"id": "a", "title": "Alpha", "text": "First article about rivers."},
    {"id": "b", "title": "Beta", "text": "Second article about mountains."},
]


@pytest.mark.parametrize("field", ["title", "text", "id", "topic", "url"])
def test_nul_in_a_corpus_field_is_refused_at_load_naming_file_record_field(tmp_path, field):
    """A NUL character (HDF5 strings cannot hold one) is refused at load, not at the merge."""
    bad = {**GOOD[1], field: "Be\x00ta"}
    path = write_jsonl(tmp_path / "c.jsonl", [GOOD[0], bad])
    with pytest.raises(KnowledgeMapError) as error:
        load_corpus("file", path)
    message = str(error.value)
    assert str(path) in message and "record 1" in message and f"field {field!r}" in message
    assert "NUL" in message and "\n" not in message


def test_inspect_reports_the_nul_the_loader_refuses(tmp_path):
    """``inspect`` applies the same string rule as the loader."""
    path = write_jsonl(tmp_path / "c.jsonl", [GOOD[0], {**GOOD[1], "title": "Be\x00ta"}])
    result = subprocess.run([sys.executable, "-m", "knowledge_map", "inspect", str(path)], capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert "problems: 1" in result.stdout and "record 1 (id='b'): field 'title' contains a NUL" in result.stdout


@pytest.mark.parametrize("change", [{"question": "Wh\x00at?"}, {"options": ["a", "b\x00"]}, {"topic": "\x00"}])
def test_nul_in_a_question_is_refused_naming_the_question_and_field(tmp_path, change):
    """Questions follow the same string rule as the corpus."""
    item = {"question": "What?", "options": ["a", "b"], "correctIndex": 0, **change}
    path = tmp_path / "q.json"
    path.write_text(json.dumps([item]))
    with pytest.raises(KnowledgeMapError, match=r"q.json: question 0: field '[a-z]+'( item 1)? contains a NUL"):
        load_questions(path)


def test_nul_in_a_config_string_is_refused_naming_the_key():
    """A config string (stored in shard attributes) follows the same rule."""
    with pytest.raises(KnowledgeMapError, match=r"^config: model.prompt: contains a NUL"):
        validate_config({"model": {"prompt": "query:\x00 "}})


@pytest.mark.parametrize(("change", "key"), [({"shards": 2.0}, "shards"), ({"corpus": {"limit": 10.0}}, "corpus.limit"),
                                             ({"labels": {"levels": [5.0]}}, "labels.levels.0")])
def test_whole_numbers_written_as_floats_are_refused_by_the_schema(change, key):
    """``shards: 2.0`` passed JSON Schema's ``integer`` and then raised TypeError in the workflow."""
    with pytest.raises(KnowledgeMapError, match=rf"^config: {key}: .* is not of type 'integer'"):
        validate_config(change)


def test_dollar_signs_in_titles_and_topics_do_not_reach_mathtext(tmp_path):
    """``Fees: $5 (50% off) or $10`` is drawn as text, not parsed by matplotlib's math parser."""
    from knowledge_map.figure import render_map

    hostile = "Fees: $5 (50% off) or $10"
    level = {"cells": [{"label": hostile, "article_count": 3, "gx": 0, "gy": 0, "center_x": 0.5, "center_y": 0.5},
                       {"label": r"$\frac{", "article_count": 2, "gx": 1, "gy": 0, "center_x": 0.2, "center_y": 0.5}]}
    rng = np.random.default_rng(0)
    render_map(str(tmp_path / "map.png"), rng.random((6, 2)), [hostile, r"$\x$"] * 3,
               [{"x": 0.3, "y": 0.3}], level, title=hostile)
    assert (tmp_path / "map.png").stat().st_size > 1000


def share_round_trip(answers: list[dict], option_counts: list[int] | None) -> dict:
    """encodeState then decodeState in Node, on the site's own share.js."""
    script = (f"import {{ encodeState, decodeState }} from {json.dumps(str(REPO / 'site/js/share.js'))};"
              f"const hash = encodeState({json.dumps(answers)}, {{cx: 0.25, cy: 0.75, zoom: 3}});"
              f"console.log(JSON.stringify({{hash, state: decodeState(hash, 3, {json.dumps(option_counts)})}}));")
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.skipif(subprocess.run(["which", "node"], capture_output=True).returncode, reason="needs node")
def test_share_link_keeps_answers_of_questions_with_more_than_four_options():
    """``#a=0.4`` (option 5 of a six-option question) and larger indices round-trip."""
    answers = [{"q": 0, "option": 4}, {"q": 1, "option": 11}, {"q": 2, "option": 1}]
    out = share_round_trip(answers, None)
    assert out["hash"].startswith("#a=0.4,1.11,2.1&")
    assert out["state"]["answers"] == answers
    assert out["state"]["view"] == {"cx": 0.25, "cy": 0.75, "zoom": 3}
    # With the option counts known, an answer naming an option the question lacks is dropped.
    assert share_round_trip(answers, [6, 12, 2])["state"]["answers"] == answers
    assert share_round_trip(answers, [6, 11, 2])["state"]["answers"] == [answers[0], answers[2]]


def test_topic_accuracy_on_a_tiny_corpus_has_no_tracebacks():
    """Seven articles (training folds smaller than k) give a number, not NaN and a page of warnings."""
    from knowledge_map.metrics import map_metrics, topic_knn_accuracy

    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 5))
    topics = ["a", "a", "a", "b", "b", "b", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        accuracy = topic_knn_accuracy(features, topics, k=10)
        assert accuracy is not None and 0 <= accuracy <= 1
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        three = map_metrics(unit[:3], rng.random((3, 2)), ["a", "b", "a"], [], k=10)
    assert three["topic_knn10_accuracy_embedding"] is None and three["trustworthiness@10"] is None


def test_file_corpus_is_not_credited_to_wikipedia_unless_configured():
    """A ``source: file`` corpus gets a neutral line; ``corpus.attribution`` sets it; the default keeps CC BY-SA."""
    from knowledge_map.sitedata import attribution_text

    assert "Wikipedia" not in attribution_text("file") and "CC BY-SA" not in attribution_text("file")
    assert attribution_text("file", "Text from the Acme wiki, CC0") == "Text from the Acme wiki, CC0"
    assert "CC BY-SA 4.0" in attribution_text("vital-articles")
    config = validate_config({"corpus": {"attribution": "Acme, CC0"}})
    assert config["corpus"]["attribution"] == "Acme, CC0"
    assert "Wikipedia" not in (REPO / "site/index.html").read_text().split("<footer", 1)[1]


def test_question_source_matched_by_id_when_titles_repeat(tmp_path):
    """Two articles titled "Mercury": ``source_id`` picks the right one; a bare title match is refused."""
    ids, titles = ["planet", "element", "god"], ["Mercury", "Mercury", "Jupiter"]
    path = tmp_path / "q.json"
    items = [{"question": "Which element is liquid?", "options": ["Hg", "Fe"], "correctIndex": 0,
              "source_article": "Mercury", "source_id": "element"},
             {"question": "King of the gods?", "options": ["Jupiter", "Mars"], "correctIndex": 0,
              "source_article": "Jupiter"}]
    path.write_text(json.dumps(items))
    questions = load_questions(path)
    assert source_rows(questions, ids, titles, str(path)) == [1, 2]
    path.write_text(json.dumps([{k: v for k, v in items[0].items() if k != "source_id"}]))
    with pytest.raises(KnowledgeMapError, match=r"q.json: question 0: field 'source_article' 'Mercury' matches 2 "
                                                r"articles \(ids 'planet', 'element'\); name the article with 'source_id'"):
        source_rows(load_questions(path), ids, titles, str(path))


def test_placed_questions_are_scored_against_the_article_named_by_id():
    """The ranks in questions.json are computed for the row ``source_id`` names, not the last same-titled one."""
    from knowledge_map.placement import place_questions
    from knowledge_map.questions import attach_sources

    embeddings = np.eye(3, dtype=np.float32)
    xy = np.array([[0.1, 0.1], [0.9, 0.9], [0.5, 0.1]])
    question = {"question": "q", "options": ["a", "b"], "correctIndex": 0, "source_article": "Mercury",
                "source_id": "planet"}
    query = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    placed = place_questions([question], query, embeddings, xy, ["Mercury", "Mercury", "Jupiter"], k=2)
    attach_sources(placed, [0], query, embeddings, xy)
    assert placed[0]["source_row"] == 0 and placed[0]["rank_embedding"] == 1 and placed[0]["rank_map"] == 1


def test_a_replaced_input_file_changes_its_trigger_even_when_older(tmp_path):
    """Snakemake reruns on a newer input only; the content digest (a param of prepare_corpus, the question rules and
    the answer rules) sees a corpus replaced by an older file, and is read once per file state (cached)."""
    import json
    import os

    from knowledge_map.identity import input_trigger

    corpus, cache = tmp_path / "corpus.jsonl", tmp_path / "digests.json"
    corpus.write_text('{"id": "a", "title": "A", "text": "first"}\n')
    first = input_trigger(corpus, cache)
    assert len(first) == 16 and json.loads(cache.read_text())
    stamp = os.stat(corpus).st_mtime_ns
    corpus.write_text('{"id": "a", "title": "A", "text": "other"}\n')
    os.utime(corpus, ns=(stamp - 10**12, stamp - 10**12))  # unpacked from an older archive
    assert input_trigger(corpus, cache) != first
    assert input_trigger(tmp_path / "missing.jsonl", cache) == "" and input_trigger(None) == ""
    rules = (REPO / "rules/corpus.smk").read_text()
    assert "content=get_corpus_digest" in rules
