"""Past answers (config ``responses:``): a CSV ``learner,session,question,correct``.

``question`` is a question's ``id`` in questions.json, or its 0-based index
in the file when the questions have no ids.  ``correct`` is 1/0 (also
true/false, yes/no).  Every other column is ignored.  A bad row stops the
run with one line naming the file, the line and the field.  One learner
answering one question twice in a session keeps the first answer (a quiz
asks each question once; a repeat is usually a re-submitted form); how many
were left out, and how many of them disagreed with the kept one, is logged
as a warning, since quizzes taken at different times belong in different
sessions.
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.questions import question_keys
from knowledge_map.textsafety import control_problem, decode_text, string_problem

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
        pairs = {pair: None for pair in sorted(zip(self.learner.tolist(), self.session.tolist()))}
        number = {pair: index for index, pair in enumerate(pairs)}
        return np.array([number[pair] for pair in zip(self.learner.tolist(), self.session.tolist())], dtype=np.int64)


def read_responses(path: str | Path, questions: list[dict], warn: bool = True) -> Responses:
    """Validated answers from ``path``, questions resolved to indices.

    ``warn``: log the warnings about the answers (repeats left out, all of
    one outcome); the second rule reading the same file passes False, so
    each is said once per run.

    Errors name the file's physical line (blank lines and cells spanning
    lines counted).  A byte-order mark (Excel's "CSV UTF-8") is skipped, and
    so are rows with every cell empty (what a spreadsheet leaves where rows
    were cleared).
    """
    path = Path(path)
    keys = {key: index for index, key in enumerate(question_keys(questions))}
    text = decode_text(path, "responses file")
    rows: dict[tuple[str, str, int], int] = {}
    repeats = disagreeing = 0
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        names = [name.strip() for name in header or []]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise KnowledgeMapError(f"{path}: line 1: missing column(s) {', '.join(missing)} (expected a header "
                                    f"{','.join(COLUMNS)} separated by commas, found {(header or [''])[0][:80]!r}"
                                    f"{' and more' if len(header or []) > 1 else ''})")
        twice = [c for c in COLUMNS if names.count(c) > 1]
        if twice:
            raise KnowledgeMapError(f"{path}: line 1: column {twice[0]!r} appears twice in the header")
        column = {c: names.index(c) for c in COLUMNS}
        last = max(column, key=column.get)  # other columns may be left off the end of a row
        ended = reader.line_num
        for cells in reader:
            line, start, ended = reader.line_num, ended + 1, reader.line_num
            if any("\n" in cells[column[c]] for c in COLUMNS if column[c] < len(cells)):
                # A stray quote swallows the lines after it into one cell (and the error named a later line).
                raise KnowledgeMapError(f"{path}: line {start}: a quote opened in this row is not closed (its cell "
                                        f"runs on to line {line})")
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) <= column[last]:
                raise KnowledgeMapError(f"{path}: line {line}: has {len(cells)} field(s), but the header puts "
                                        f"{last!r} in field {column[last] + 1}")
            learner, session, key, value = (cells[column[c]].strip() for c in COLUMNS)
            # One person whether their name was typed on a Mac (NFD "José") or elsewhere (NFC).
            learner, session = unicodedata.normalize("NFC", learner), unicodedata.normalize("NFC", session)
            if not learner:
                raise KnowledgeMapError(f"{path}: line {line}: field 'learner' is empty")
            for field, label in (("learner", learner), ("session", session)):
                problem = string_problem(label) or control_problem(label)
                if problem:
                    raise KnowledgeMapError(f"{path}: line {line}: field {field!r} {problem}")
            if key not in keys:
                raise KnowledgeMapError(f"{path}: line {line}: field 'question' {key!r} is not a question id "
                                        f"(or, for questions without ids, a 0-based index) in the questions file")
            value = value.lower()
            if value not in TRUE and value not in FALSE:
                raise KnowledgeMapError(f"{path}: line {line}: field 'correct' must be 1 or 0, got {value!r}")
            answer, outcome = (learner, session, keys[key]), int(value in TRUE)
            if answer in rows:
                repeats += 1
                disagreeing += rows[answer] != outcome
            else:
                rows[answer] = outcome
    except csv.Error as exc:
        raise KnowledgeMapError(f"{path}: line {reader.line_num}: {exc}") from exc
    if not rows:
        raise KnowledgeMapError(f"{path}: no answers (expected a header {','.join(COLUMNS)} and rows)")
    log = logging.getLogger(__name__)
    if repeats and warn:
        log.warning("%s: %d repeated answer(s) (same learner, session and question) left out, %d of them different "
                    "from the first, which is kept; answers given at different times belong in different sessions",
                    path, repeats, disagreeing)
    if len(set(rows.values())) == 1 and warn:
        log.warning("%s: all %d answers are %s: the difficulties can only say that the quiz was %s for these learners",
                    path, len(rows), *(("right", "easy") if next(iter(rows.values())) else ("wrong", "hard")))
    learners, sessions, question, correct = zip(*[(k[0], k[1], k[2], v) for k, v in rows.items()])
    return Responses(np.array(learners, dtype=object), np.array(sessions, dtype=object),
                     np.array(question, dtype=np.int64), np.array(correct, dtype=np.int64))
