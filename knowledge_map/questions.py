"""Load and validate quiz questions (the seed's questions.json shape).

Each question is ``{question, options, correctIndex, topic?, source_article?}``.
Incoming ``x``/``y`` are dropped: the workflow places every question itself.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from knowledge_map.errors import KnowledgeMapError


def default_questions_path() -> Path:
    """The question set shipped with the package (written for the vital articles)."""
    return Path(str(resources.files("knowledge_map").joinpath("data", "questions.json")))


def _check_question(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise KnowledgeMapError(f"{where}: expected an object, got {type(item).__name__}")
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        raise KnowledgeMapError(f"{where}: field 'question' is missing or empty")
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2:
        raise KnowledgeMapError(f"{where}: field 'options' must be a list of at least 2 strings")
    for number, option in enumerate(options):
        if not isinstance(option, str) or not option.strip():
            raise KnowledgeMapError(f"{where}: field 'options' item {number} is missing, empty or not a string")
    correct = item.get("correctIndex")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct < len(options):
        raise KnowledgeMapError(
            f"{where}: field 'correctIndex' must be an integer from 0 to {len(options) - 1}, got {correct!r}"
        )
    for field in ("topic", "source_article"):
        if item.get(field) is not None and not isinstance(item[field], str):
            raise KnowledgeMapError(f"{where}: field {field!r} must be a string or null")
    return {
        "question": text,
        "options": list(options),
        "correctIndex": correct,
        "topic": item.get("topic"),
        "source_article": item.get("source_article"),
    }


def load_questions(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Validated questions from ``path`` (default: the shipped set), in file order."""
    path = Path(path) if path is not None else default_questions_path()
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeMapError(f"{path}: questions file not found") from exc
    except UnicodeDecodeError as exc:
        raise KnowledgeMapError(f"{path}: not valid UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise KnowledgeMapError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, list) or not data:
        raise KnowledgeMapError(f"{path}: expected a non-empty JSON list of questions")
    return [_check_question(item, f"{path}: question {index}") for index, item in enumerate(data)]


def question_text(question: dict[str, Any]) -> str:
    """The text embedded to place a question: the question alone.

    Measured on the shipped set (MiniLM, vital articles): the question alone
    finds its source article first for 97% of questions, the question plus
    its correct answer for 88%, plus all options for 85%.
    """
    return question["question"]
