"""Glue between Snakemake's ``script:`` directive and the package.

Rule scripts call :func:`run_rule` with a ``main(snakemake)`` function: it
sends logging and stderr to the rule's log file and turns a
:class:`~knowledge_map.errors.KnowledgeMapError` into one line on the
console (and in the log) and a non-zero exit, instead of a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from knowledge_map.errors import KnowledgeMapError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | None) -> None:
    """Send the package's INFO logging to ``log_path`` (or stderr when there is no log)."""
    handler = logging.FileHandler(log_path, mode="a") if log_path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("knowledge_map").setLevel(logging.INFO)


def run_rule(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(snakemake)`` with logging to the rule's log; one-line errors, exit 1."""
    console = sys.stderr
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:
        sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    configure_logging(log_path)
    try:
        main(snakemake)
    except KnowledgeMapError as error:
        logging.getLogger("knowledge_map").error("%s", error)
        print(f"knowledge-map error: {error}", file=console, flush=True)
        sys.exit(1)
