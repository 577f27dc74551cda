"""Questions: the shipped set and every refusal of a bad questions.json."""

from __future__ import annotations

import json

import pytest

from knowledge_map.corpus import load_vital_articles
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.questions import load_questions, question_text, source_rows


def test_shipped_set_covers_the_vital_article_topics():
    questions = load_questions()
    titles = {r["title"]: r for r in load_vital_articles()}
    assert len(questions) >= 40
    for question in questions:
        assert question["source_article"] in titles
        assert question["topic"] == titles[question["source_article"]]["topic"]
        assert len(question["options"]) == 4 and len(set(question["options"])) == 4
    topics = {q["topic"] for q in questions}
    assert len(topics) == 11
    assert {q["correctIndex"] for q in questions} == {0, 1, 2, 3}


def test_incoming_coordinates_are_dropped(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"question": "Q?", "options": ["a", "b"], "correctIndex": 1, "x": 0.3, "y": 0.9}]))
    (question,) = load_questions(path)
    assert "x" not in question and "y" not in question
    assert question_text(question) == "Q?"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"question": "Q?", "options": ["a", "b", "c", "d"], "correctIndex": 4},
            "field 'correctIndex' must be an integer from 0 to 3, got 4",
        ),
        ({"question": "Q?", "options": ["a", "b"], "correctIndex": "1"}, "field 'correctIndex' must be an integer"),
        ({"question": "Q?", "options": ["a", "b"], "correctIndex": True}, "field 'correctIndex' must be an integer"),
        ({"question": "Q?", "options": ["only one"], "correctIndex": 0}, "field 'options' must be a list of at least 2 strings"),
        ({"question": "Q?", "options": ["a", ""], "correctIndex": 0}, "field 'options' item 1 is missing, empty"),
        ({"question": "", "options": ["a", "b"], "correctIndex": 0}, "field 'question' is missing or empty"),
        ({"options": ["a", "b"], "correctIndex": 0}, "field 'question' is missing or empty"),
        ({"question": "Q?", "options": ["a", "b"], "correctIndex": 0, "source_article": 5}, "field 'source_article' must be a string"),
        ({"question": "Q?", "options": ["Paris", "Rome", " Paris "], "correctIndex": 0},
         "field 'options' item 2 ' Paris ' repeats item 0"),
        ({"question": "Q?", "options": [1789, 1799], "correctIndex": 0}, "item 0 is missing, empty or not a string, got int"),
        # Look alike on the page: NFC and NFD "café", a trailing zero-width space; a zero-width-only option is blank.
        ({"question": "Q?", "options": ["caf\u00e9", "cafe\u0301"], "correctIndex": 0}, "item 1 .* repeats item 0"),
        ({"question": "Q?", "options": ["a", "a\u200b"], "correctIndex": 0}, "item 1 .* repeats item 0"),
        ({"question": "Q?", "options": ["a", "\u200b\u200b"], "correctIndex": 0}, "item 1 is missing, empty"),
        ({"question": "\u200b", "options": ["a", "b"], "correctIndex": 0}, "field 'question' is missing or empty"),
        # An answers file (its cells read stripped) could never name ' q3'; a control character breaks CSV and page.
        ({"id": " q3", "question": "Q?", "options": ["a", "b"], "correctIndex": 0}, "field 'id' ' q3' has spaces at its"),
        ({"id": "q\n3", "question": "Q?", "options": ["a", "b"], "correctIndex": 0}, "field 'id' .* control character"),
    ],
)
def test_bad_questions_name_the_question_and_field(tmp_path, item, message):
    path = tmp_path / "questions.json"
    good = {"question": "Fine?", "options": ["a", "b"], "correctIndex": 0}
    path.write_text(json.dumps([good, item]))
    with pytest.raises(KnowledgeMapError, match=message) as info:
        load_questions(path)
    assert f"{path}: question 1:" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"[]", "non-empty JSON list"), (b"{", "invalid JSON"), (b"\xff", "not valid UTF-8"),
     (b"[" * 100_000, "invalid JSON: nested too deeply"), (b"[" + b"1" * 5000 + b"]", "invalid JSON: a number too long")]
)
def test_unreadable_question_files(tmp_path, content, message):
    path = tmp_path / "questions.json"
    path.write_bytes(content)
    with pytest.raises(KnowledgeMapError, match=message):
        load_questions(path)


def test_a_folder_given_as_the_questions_file_is_one_line(tmp_path):
    with pytest.raises(KnowledgeMapError, match=r"cannot read the questions file \(Is a directory\)"):
        load_questions(tmp_path)


def test_a_question_without_id_may_not_share_its_index_name_with_another_id(tmp_path):
    """Answers name a question by its id, or by its index when it has none: "1" would name two questions."""
    path = tmp_path / "questions.json"
    path.write_text(json.dumps([{"id": "1", "question": "A?", "options": ["a", "b"], "correctIndex": 0},
                                {"question": "B?", "options": ["a", "b"], "correctIndex": 0}]))
    with pytest.raises(KnowledgeMapError, match=r"question 1: answers name it '1', as they name question 0"):
        load_questions(path)


def test_options_that_differ_only_in_case_are_different_answers(tmp_path):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps([{"question": "Symbol of cobalt?", "options": ["CO", "Co"], "correctIndex": 1}]))
    assert load_questions(path)[0]["options"] == ["CO", "Co"]


def test_a_byte_order_mark_and_integer_source_ids_are_read(tmp_path):
    path = tmp_path / "questions.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"question": "A?", "options": ["a", "b"], "correctIndex": 0,
                                                     "source_id": 42}]).encode())
    (question,) = load_questions(path)
    assert question["source_id"] == "42"


def test_a_source_the_corpus_lacks_is_reported_in_one_warning(caplog):
    questions = [{"question": "A?", "source_id": "nope"}, {"question": "B?", "source_article": "Mars"},
                 {"question": "C?", "source_article": "Not here"}]
    rows = source_rows(questions, ["m"], ["Mars"], "q.json")
    assert rows == [None, 0, None]
    (record,) = caplog.records
    assert record.getMessage() == "q.json: 2 question(s) name a source article the corpus does not have, " \
        "e.g. question 0: field 'source_id' 'nope'"


def test_questions_from_another_space_are_refused_where_they_meet_the_articles(tmp_path):
    """questions.h5 records the space it was embedded in; a reader given the articles' file compares the two."""
    import h5py
    import numpy as np

    from knowledge_map.questions import read_question_embeddings, write_question_embeddings

    space = {"model": "m", "model_sha256": "a" * 64, "prompt": "", "max_seq_length": 256}
    articles = tmp_path / "embeddings.h5"
    with h5py.File(articles, "w") as h5:
        h5.create_dataset("embeddings", data=np.zeros((2, 3), np.float32))
        h5.attrs.update(space)
    questions = tmp_path / "questions.h5"
    write_question_embeddings(questions, np.ones((1, 3)), ["0"], space)
    assert read_question_embeddings(questions, articles)[1] == ["0"]
    write_question_embeddings(questions, np.ones((1, 3)), ["0"], {**space, "model_sha256": "b" * 64})
    with pytest.raises(KnowledgeMapError) as error:
        read_question_embeddings(questions, articles)
    assert str(error.value) == (f"{questions}: the questions were embedded with model_sha256 'bbbbbbbbbbbb…', against "
                                f"model_sha256 'aaaaaaaaaaaa…' of {articles}; rerun embed_questions "
                                "(snakemake --forcerun embed_questions)")
    assert read_question_embeddings(questions)[1] == ["0"]  # without the articles' file: no comparison


def test_questions_h5_must_hold_the_questions_files_keys_and_texts(tmp_path):
    """Everything downstream indexes questions by position: a questions.h5 of other questions (or of other texts:
    question_text changed) is refused in one line, not placed as if it were these."""
    import numpy as np

    from knowledge_map.questions import question_texts_digest, read_question_embeddings, write_question_embeddings

    questions = [{"id": "a", "question": "What is X?"}, {"id": "b", "question": "What is Y?"}]
    path = tmp_path / "questions.h5"
    write_question_embeddings(path, np.ones((2, 3)), ["a", "b"], {"texts_sha256": question_texts_digest(questions)})
    assert read_question_embeddings(path, questions=questions)[1] == ["a", "b"]
    edited = [questions[0], {**questions[1], "question": "What is Z?"}]
    write_question_embeddings(tmp_path / "old.h5", np.ones((2, 3)), ["a", "b"], {})  # before the digest was kept
    with pytest.raises(KnowledgeMapError, match=r"old.h5: made by an older version of knowledge-map; rerun embed_"):
        read_question_embeddings(tmp_path / "old.h5", questions=questions)
    for other in (edited, questions[:1], questions[::-1]):
        with pytest.raises(KnowledgeMapError, match=r"questions.h5: holds other questions \(or other texts of them\) "
                                                    r"than the questions file .*rerun embed_questions"):
            read_question_embeddings(path, questions=other)
