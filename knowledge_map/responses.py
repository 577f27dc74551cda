"""Past answers (config ``responses:``): a CSV ``learner,session,question,correct``.

``question`` is a question's ``id`` in questions.json, or its 0-based index
in the file when the questions have no ids.  ``correct`` is 1/0 (also
true/false, yes/no).  Every other column is ignored.  A bad row stops the
run with one line naming the file, the line and the field.  One learner
answering one question twice in a session keeps the first answer (a quiz
asks each question once; a repeat is usually a re-submitted form).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.questions import question_keys

COLUMNS = ("learner", "session", "question", "correct")
TRUE = {"1", "true", "yes", "right", "correct"}
FALSE = {"0", "false", "no", "wrong", "incorrect"}


@dataclass
class Responses:
    """Answers as parallel arrays: learner and session labels, question index, 0/1 outcome."""

    learner: np.ndarray
    session: np.ndarray
    question: np.ndarray
    correct: np.ndarray

    def __len__(self) -> int:
        return len(self.correct)

    def person(self) -> np.ndarray:
        """One integer per (learner, session): the unit whose ability the models estimate."""
        pairs = np.array([f"{learner}\x1f{session}" for learner, session in zip(self.learner, self.session)])
        return np.unique(pairs, return_inverse=True)[1]


def read_responses(path: str | Path, questions: list[dict]) -> Responses:
    """Validated answers from ``path``, questions resolved to indices."""
    path = Path(path)
    keys = {key: index for index, key in enumerate(question_keys(questions))}
    try:
        handle = open(path, encoding="utf-8", newline="")
    except FileNotFoundError as exc:
        raise KnowledgeMapError(f"{path}: responses file not found") from exc
    rows: dict[tuple[str, str, int], int] = {}
    with handle:
        try:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise KnowledgeMapError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                                        f"(expected a header {','.join(COLUMNS)})")
            for line, record in enumerate(reader, start=2):
                learner, session = (record.get("learner") or "").strip(), (record.get("session") or "").strip()
                if not learner:
                    raise KnowledgeMapError(f"{path}: line {line}: field 'learner' is empty")
                key = (record.get("question") or "").strip()
                if key not in keys:
                    raise KnowledgeMapError(f"{path}: line {line}: field 'question' {key!r} is not a question id "
                                            f"(or, for questions without ids, a 0-based index) in the questions file")
                value = (record.get("correct") or "").strip().lower()
                if value not in TRUE and value not in FALSE:
                    raise KnowledgeMapError(f"{path}: line {line}: field 'correct' must be 1 or 0, got {value!r}")
                rows.setdefault((learner, session, keys[key]), int(value in TRUE))
        except UnicodeDecodeError as exc:
            raise KnowledgeMapError(f"{path}: not valid UTF-8 at byte {exc.start}") from exc
        except csv.Error as exc:
            raise KnowledgeMapError(f"{path}: line {reader.line_num}: {exc}") from exc
    if not rows:
        raise KnowledgeMapError(f"{path}: no answers (expected a header {','.join(COLUMNS)} and rows)")
    learners, sessions, question, correct = zip(*[(k[0], k[1], k[2], v) for k, v in rows.items()])
    return Responses(np.array(learners, dtype=object), np.array(sessions, dtype=object),
                     np.array(question, dtype=np.int64), np.array(correct, dtype=np.int64))
