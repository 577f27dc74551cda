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
