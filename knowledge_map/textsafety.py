"""The one rule for strings the workflow stores: what a title, text or setting may contain.

Every string from the user (corpus fields, questions, config values) ends up
in HDF5 attributes or datasets, Parquet, JSON and the site.  HDF5's
variable-length strings cannot hold a NUL character, and a lone surrogate
cannot be encoded as UTF-8 at all, so such a string would be accepted at
load time and crash a later stage.  Both are refused where the input is
read, with one line naming the file, the record and the field; nothing is
silently altered.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from knowledge_map.errors import KnowledgeMapError


def string_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (``None`` when it can): a NUL character or invalid UTF-8."""
    position = value.find("\x00")
    if position >= 0:
        return f"contains a NUL character (U+0000) at position {position}; remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    return None


def control_problem(value: str) -> str | None:
    """Why a short label (a learner or session id) is unfit to show or write to a CSV: a control character."""
    for position, char in enumerate(value):
        if ord(char) < 32 or 127 <= ord(char) < 160:
            return f"contains a control character (U+{ord(char):04X}) at position {position}; remove it"
    return None


def decode_text(path: Path, what: str) -> str:
    """A whole text file as UTF-8, a leading byte-order mark dropped; one line naming the line and byte if it is not.

    Excel writes "CSV UTF-8" with a byte-order mark and plain "CSV" in the
    machine's code page (cp1252 on Western Windows); the second is refused
    with the line and byte where it stops being UTF-8.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise KnowledgeMapError(f"{path}: {what} not found") from exc
    except OSError as exc:  # a folder, no permission
        raise KnowledgeMapError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = skip + exc.start
        line = raw.count(b"\n", 0, byte) + 1
        raise KnowledgeMapError(f"{path}: line {line}: not valid UTF-8 at byte {byte} (save the file as UTF-8)") from exc


#: Unicode categories that show nothing on their own: spaces, separators, format (zero-width) and control
#: characters, combining marks.
INVISIBLE = {"Zs", "Zl", "Zp", "Cf", "Cc", "Mn", "Me"}


def visible(value: str) -> bool:
    """True when ``value`` shows something: a title or an option of zero-width spaces is a blank on the page."""
    return any(unicodedata.category(char) not in INVISIBLE for char in value)


def reads_the_same(value: str) -> str:
    """What a reader sees of ``value``: NFC form, zero-width characters dropped, runs of spaces as one.

    "café" typed on a Mac (NFD) and on Windows (NFC) are different strings
    that look identical; so are "a" and "a" followed by a zero-width space.
    """
    text = "".join(char for char in unicodedata.normalize("NFC", value) if unicodedata.category(char) != "Cf")
    return " ".join(text.split())


@contextlib.contextmanager
def opened(path: Path, what: str) -> Iterator[Any]:
    """``path`` open for reading bytes; missing, a folder or unreadable is one line naming it as the ``what``."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError as exc:
        raise KnowledgeMapError(f"{path}: {what} not found") from exc
    except OSError as exc:  # a folder, no permission
        raise KnowledgeMapError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    with handle:
        yield handle


class RepeatedKey(ValueError):
    """A JSON object names one key twice (raised while parsing; :func:`parse_json` reports it)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise RepeatedKey(next(key for key in keys if keys.count(key) > 1))
    return dict(pairs)


def parse_json(text: str, where: str, line: bool = False) -> Any:
    """``json.loads(text)``, every way it can fail as one line starting with ``where``.

    Besides malformed JSON, Python refuses an integer of more than 4,300
    digits (ValueError) and recurses once per nesting level (RecursionError);
    both came out as tracebacks.  A key given twice in one object is refused
    too: JSON parsers keep the last silently, so ``{"text": "x", "text": ""}``
    read as an empty article.  ``line``: ``text`` is one line of a JSON
    Lines file (``where`` names it), so only the column is given.
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RepeatedKey as exc:
        raise KnowledgeMapError(f"{where}: invalid JSON: key {exc.args[0]!r} appears twice in one object "
                                "(the second would silently replace the first)") from exc
    except json.JSONDecodeError as exc:
        at = f"column {exc.pos + 1}" if line else f"line {exc.lineno} column {exc.colno}"
        bare_cr = " (its lines end in a bare CR, as classic Mac files do: save it with LF line ends)" \
            if line and "\r" in text.rstrip("\r\n") else ""
        raise KnowledgeMapError(f"{where}: invalid JSON at {at}: {exc.msg}{bare_cr}") from exc
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise KnowledgeMapError(f"{where}: invalid JSON: a number too long to read ({exc})") from exc
    except RecursionError as exc:
        raise KnowledgeMapError(f"{where}: invalid JSON: nested too deeply to read") from exc


def safe_url(url: str | None) -> str | None:
    """``url`` if it is http(s), else None: a ``javascript:`` link in a data file must never be clickable."""
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None


#: What a spreadsheet reads as the start of a formula in a CSV cell (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet runs: a leading apostrophe where it would start a formula.

    Learner and session ids come from the user's response file; a researcher
    opening ``predictions.csv`` in a spreadsheet must not run ``=HYPERLINK(...)``
    from it.  Such an id keeps the apostrophe in the file (and, opened from a
    CSV, usually on screen too), so it reads ``'=id`` rather than ``=id``: the
    price of never being run.  Ids that start otherwise (nearly all) are
    written unchanged.
    """
    return "'" + value if value.startswith(FORMULA_STARTS) else value
