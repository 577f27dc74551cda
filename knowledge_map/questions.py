"""Load and validate quiz questions (the seed's questions.json shape).

Each question is ``{question, options, correctIndex, id?, topic?, source_article?, source_id?}``.
``id`` (a string or integer, unique in the file) names the question in a
responses file; without it the question's 0-based index does.
Incoming ``x``/``y`` are dropped: the workflow places every question itself.
``source_id`` names the question's article by corpus id; ``source_article``
by title, which must then be unique in the corpus (:func:`source_rows`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.textsafety import (
    control_problem,
    decode_text,
    parse_json,
    reads_the_same,
    string_problem,
    visible,
)

OPTIONAL_FIELDS = ("topic", "source_article", "source_id")


def default_questions_path() -> Path:
    """The question set shipped with the package (written for the vital articles)."""
    return Path(str(resources.files("knowledge_map").joinpath("data", "questions.json")))


def _check_question(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise KnowledgeMapError(f"{where}: expected an object, got {type(item).__name__}")
    text = item.get("question")
    if not isinstance(text, str) or not visible(text):
        raise KnowledgeMapError(f"{where}: field 'question' is missing or empty")
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2:
        raise KnowledgeMapError(f"{where}: field 'options' must be a list of at least 2 strings")
    first_of: dict[str, int] = {}
    for number, option in enumerate(options):
        if not isinstance(option, str) or not visible(option):
            got = "" if isinstance(option, str) or option is None else f", got {type(option).__name__}"
            raise KnowledgeMapError(f"{where}: field 'options' item {number} is missing, empty or not a string{got}")
        same = reads_the_same(option)  # what a learner sees as the same button ("CO" and "Co" differ)
        if same in first_of:
            raise KnowledgeMapError(f"{where}: field 'options' item {number} {option!r} repeats item {first_of[same]}; "
                                    "a learner could not tell the two apart")
        first_of[same] = number
    correct = item.get("correctIndex")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct < len(options):
        raise KnowledgeMapError(
            f"{where}: field 'correctIndex' must be an integer from 0 to {len(options) - 1}, got {correct!r}"
        )
    qid = item.get("id")
    if qid is not None and (isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip()):
        raise KnowledgeMapError(f"{where}: field 'id' must be a non-empty string or an integer, got {qid!r}")
    if isinstance(qid, str):
        # An answers file names questions by id, its cells read stripped: ' q3' could never be named (and 'q1 '
        # and 'q1' would be two questions it cannot tell apart); a control character breaks the CSV and the page.
        problem = control_problem(qid) or ("has spaces at its start or end" if qid != qid.strip() else None)
        if problem:
            raise KnowledgeMapError(f"{where}: field 'id' {qid!r} {problem}")
    source_id = item.get("source_id")
    if isinstance(source_id, int) and not isinstance(source_id, bool):
        item = {**item, "source_id": str(source_id)}  # as the corpus stores an integer id
    for field in OPTIONAL_FIELDS:
        if item.get(field) is not None and not isinstance(item[field], str):
            raise KnowledgeMapError(f"{where}: field {field!r} must be a string or null, got {type(item[field]).__name__}")
    strings = [("'question'", text), *((f"'options' item {n}", o) for n, o in enumerate(options)),
               *((repr(f), item[f]) for f in OPTIONAL_FIELDS if item.get(f) is not None),
               *([("'id'", str(qid))] if qid is not None else [])]
    for field, value in strings:
        problem = string_problem(value)
        if problem:
            raise KnowledgeMapError(f"{where}: field {field} {problem}")
    checked = {"id": None if qid is None else str(qid), "question": text, "options": list(options), "correctIndex": correct}
    checked.update({field: item.get(field) for field in ("topic", "source_article")})
    if item.get("source_id") is not None:
        checked["source_id"] = item["source_id"]
    return checked


def load_questions(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Validated questions from ``path`` (default: the shipped set), in file order."""
    path = Path(path) if path is not None else default_questions_path()
    data = parse_json(decode_text(path, "questions file"), str(path))
    if not isinstance(data, list) or not data:
        raise KnowledgeMapError(f"{path}: expected a non-empty JSON list of questions")
    questions = [_check_question(item, f"{path}: question {index}") for index, item in enumerate(data)]
    seen: dict[str, int] = {}
    for index, (question, key) in enumerate(zip(questions, question_keys(questions))):
        if key in seen:  # a responses file names a question by this key, so two may never share one
            first = seen[key]
            if question["id"] is not None and questions[first]["id"] is not None:
                raise KnowledgeMapError(f"{path}: question {index}: field 'id' {key!r} repeats question {first}")
            raise KnowledgeMapError(
                f"{path}: question {index}: answers name it {key!r}, as they name question {first} "
                "(a question without 'id' is named by its 0-based index); give every question an 'id', or none")
        seen[key] = index
    return questions


def question_text(question: dict[str, Any]) -> str:
    """The text embedded to place a question: the question alone.

    Measured on the shipped set (MiniLM, vital articles): the question alone
    finds its source article first for 97% of questions, the question plus
    its correct answer for 88%, plus all options for 85%.
    """
    return question["question"]


def source_rows(questions: list[dict[str, Any]], ids: list[str], titles: list[str], source: str) -> list[int | None]:
    """The corpus row of each question's source article, or None when it has none in the corpus.

    ``source_id`` (a corpus id) wins over ``source_article`` (a title).  A
    title that several articles share is refused in one line naming the
    question, because picking one of them would silently score the
    question against the wrong article; give ``source_id`` instead.
    """
    row_of_id = {rid: row for row, rid in enumerate(ids)}
    rows_of_title: dict[str, list[int]] = {}
    for row, title in enumerate(titles):
        rows_of_title.setdefault(title, []).append(row)
    rows: list[int | None] = []
    for number, question in enumerate(questions):
        if question.get("source_id") is not None:
            rows.append(row_of_id.get(question["source_id"]))
            continue
        matches = rows_of_title.get(question.get("source_article") or "", [])
        if len(matches) > 1:
            raise KnowledgeMapError(
                f"{source}: question {number}: field 'source_article' {question['source_article']!r} matches "
                f"{len(matches)} articles (ids {', '.join(repr(ids[r]) for r in matches[:5])}); "
                "name the article with 'source_id' instead"
            )
        rows.append(matches[0] if matches else None)
    warn_missing_sources(questions, rows, source)
    return rows


def warn_missing_sources(questions: list[dict[str, Any]], rows: list[int | None], source: str) -> int:
    """Log one line when questions name a source article the corpus does not have (usually a typo or another
    corpus): those questions then drop out of the source-rank metrics, which would otherwise go unnoticed."""
    missing = [(n, q) for n, (q, row) in enumerate(zip(questions, rows))
               if row is None and (q.get("source_id") is not None or q.get("source_article"))]
    if missing:
        number, question = missing[0]
        field = "source_id" if question.get("source_id") is not None else "source_article"
        logging.getLogger(__name__).warning(
            "%s: %d question(s) name a source article the corpus does not have, e.g. question %d: field %r %r",
            source, len(missing), number, field, question[field])
    return len(missing)


def attach_sources(placed: list[dict[str, Any]], rows: list[int | None], question_embeddings, embeddings, xy) -> None:
    """Set each placed question's ``source_row`` and its ranks from ``rows`` (see :func:`source_rows`), in place.

    ``rank_embedding``: the source's 1-based rank by cosine to the question;
    ``rank_map``: by distance to the question's position on the map.
    """
    import numpy as np

    from knowledge_map.placement import rank_of

    for q, (item, row) in enumerate(zip(placed, rows)):
        item["source_row"] = row
        item.pop("rank_embedding", None)
        item.pop("rank_map", None)
        if row is not None:
            item["rank_embedding"] = rank_of(row, embeddings @ question_embeddings[q], higher_is_closer=True)
            distances = np.linalg.norm(xy.astype(np.float64) - np.array([item["x"], item["y"]]), axis=1)
            item["rank_map"] = rank_of(row, distances, higher_is_closer=False)


def question_keys(questions: list[dict[str, Any]]) -> list[str]:
    """How a responses file names each question: its ``id``, or its 0-based index when it has none."""
    return [q["id"] if q.get("id") is not None else str(i) for i, q in enumerate(questions)]


def write_question_embeddings(path: str | Path, embeddings, keys: list[str], attrs: dict[str, Any]) -> None:
    """``questions.h5``: ``embeddings`` (Q x d float32, L2-normalised) and ``keys``, atomically."""
    import h5py
    import numpy as np

    from knowledge_map.io import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("embeddings", data=np.asarray(embeddings, dtype=np.float32))
            h5.create_dataset("keys", data=np.array(keys, dtype=object), dtype=h5py.string_dtype())
            for key, value in attrs.items():
                h5.attrs[key] = value


def question_texts_digest(questions: list[dict[str, Any]]) -> str:
    """SHA-256 of the texts embedded for ``questions`` (:func:`question_text`), in order: what questions.h5 holds."""
    import hashlib

    digest = hashlib.sha256()
    for question in questions:
        digest.update(question_text(question).encode("utf-8") + b"\0")
    return digest.hexdigest()


def read_question_embeddings(path: str | Path, articles: str | Path | None = None,
                             questions: list[dict[str, Any]] | None = None):
    """(embeddings, keys) from :func:`write_question_embeddings`'s file.

    With ``articles`` (the merged ``embeddings.h5``), the questions must have
    been embedded in the articles' space (:data:`knowledge_map.identity.TEXT_SPACE_FIELDS`:
    model, its files' digest, prompt, length), else one line says which
    field differs: questions from old weights placed among re-embedded
    articles would be compared in two spaces without a word.  With
    ``questions``, the file must hold exactly their keys and texts, in
    order (everything downstream indexes questions by position).
    """
    import h5py

    with h5py.File(path, "r") as h5:
        embeddings, keys, attrs = h5["embeddings"][()], h5["keys"].asstr()[()].tolist(), dict(h5.attrs)
    if articles is not None:
        from knowledge_map.identity import space_mismatch
        from knowledge_map.merge import read_attrs

        problem = space_mismatch(read_attrs(articles), attrs)
        if problem:
            raise KnowledgeMapError(f"{path}: the questions were embedded with {problem} of {articles}; "
                                    "rerun embed_questions (snakemake --forcerun embed_questions)")
    if questions is not None and "texts_sha256" not in attrs:
        raise KnowledgeMapError(f"{path}: made by an older version of knowledge-map; rerun embed_questions "
                                "(snakemake --forcerun embed_questions)")
    if questions is not None and (keys != question_keys(questions)
                                  or attrs["texts_sha256"] != question_texts_digest(questions)):
        raise KnowledgeMapError(f"{path}: holds other questions (or other texts of them) than the questions file "
                                f"({len(keys)} embedded, {len(questions)} now); rerun embed_questions "
                                "(snakemake --forcerun embed_questions)")
    return embeddings, keys
