"""Glue between Snakemake's ``script:`` directive and the package.

Rule scripts call :func:`run_rule` with a ``main(snakemake)`` function: it
sends logging and stderr to the rule's log file and turns a
:class:`~knowledge_map.errors.KnowledgeMapError` into one line on the
console (and in the log) and a non-zero exit, instead of a traceback.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable
from typing import Any

from knowledge_map.errors import KnowledgeMapError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | None, console=None) -> None:
    """Send the package's INFO logging to ``log_path`` (or stderr when there is no log).

    With a log file, warnings also go to ``console`` as one line each
    ("knowledge-map warning: ..."): a warning about the user's data (answers
    left out, a source article missing, the int8 engine falling back) that
    only a log file holds is a warning nobody reads.
    """
    handler = logging.FileHandler(log_path, mode="a") if log_path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if log_path and console is not None:
        echo = logging.StreamHandler(console)
        echo.setLevel(logging.WARNING)
        echo.addFilter(logging.Filter("knowledge_map"))  # the package's own warnings, not every library's
        echo.setFormatter(ConsoleLine())
        root.handlers.append(echo)
    root.setLevel(logging.WARNING)
    logging.getLogger("knowledge_map").setLevel(logging.INFO)


class ConsoleLine(logging.Formatter):
    """One console line per record, starting on a line of its own (see :func:`fail`)."""

    def format(self, record: logging.LogRecord) -> str:
        return "\nknowledge-map warning: " + " ".join(super().format(record).split())


def run_rule(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(snakemake)`` with logging to the rule's log; one-line errors, exit 1."""
    console = sys.stderr
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:
        sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    configure_logging(log_path, console)
    try:
        main(snakemake)
    except KnowledgeMapError as error:
        fail(console, str(error))
    except (OSError, RuntimeError) as error:  # h5py reports a failed write on close as RuntimeError
        if not is_out_of_space(error):
            raise
        outputs = ", ".join(str(path) for path in snakemake.output)
        fail(console, f"out of disk space (or over a file-size limit) while writing {outputs}: {error}; "
                      "free space and re-run: finished outputs are intact and nothing half-written was kept")


#: errno values meaning "the disk (or a quota, or a file-size limit) is full".
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_out_of_space(error: Exception) -> bool:
    """True for a full disk, an exhausted quota or a file-size limit (HDF5 reports these as text only)."""
    if getattr(error, "errno", None) in OUT_OF_SPACE:
        return True
    text = str(error)
    return any(marker in text for marker in ("No space left", "File too large", "Disk quota exceeded",
                                             "errno = 28", "errno = 27", "errno = 122"))


def fail(console, message: str) -> None:
    """Log ``message`` and print it as one line on the console; exit 1.

    The console is Snakemake's too, and its own lines can arrive in two
    writes ("Finished jobid: 14 (Rule: ...)", then the newline), so the
    line is written in one call that starts with a newline: it starts a
    line of its own whatever was written before it.
    """
    message = " ".join(message.split())
    logging.getLogger("knowledge_map").error("%s", message)
    console.write(f"\nknowledge-map error: {message}\n")
    console.flush()
    sys.exit(1)
