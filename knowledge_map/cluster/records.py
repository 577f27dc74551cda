"""What the submit, status and cancel commands remember between calls, in the workdir.

Job records live in ``.snakemake/knowledge-map-tensor/jobs/`` (one JSON file
a job); hosts set aside after failing to take a job in ``aside/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from knowledge_map.cluster.hosts import Cluster
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import write_json

STATE_DIR = Path(".snakemake/knowledge-map-tensor")


# -- job records ----------------------------------------------------------------------------------


def record_path(jobid: str) -> Path:
    return STATE_DIR / "jobs" / f"{jobid.replace('/', '__')}.json"


def read_record(jobid: str) -> dict:
    try:
        return json.loads(record_path(jobid).read_text())
    except FileNotFoundError as error:
        raise KnowledgeMapError(f"no record of tensor job {jobid} in {STATE_DIR.resolve()}") from error


def write_record(record: dict) -> None:
    # The submit, status and cancel commands of one run may write a record at once.
    write_json(record_path(record["jobid"]), record, concurrent=True)


def active_jobs(run: str) -> dict[str, int]:
    """GPUs in use per host by this Snakemake run's jobs not yet finished."""
    counts: dict[str, int] = {}
    for path in (STATE_DIR / "jobs").glob("*.json"):
        record = json.loads(path.read_text())
        if record["run"] == run and record["state"] in ("submitting", "submitted") and record["gpus"] > 0:
            counts[record["host"]] = counts.get(record["host"], 0) + record["gpus"]
    return counts


# -- hosts set aside ------------------------------------------------------------------------------


# -- hosts set aside ------------------------------------------------------------------------------


def aside_path(host: str) -> Path:
    return STATE_DIR / "aside" / host


def set_aside(cluster: Cluster, host: str, error: KnowledgeMapError) -> None:
    """Pass over ``host`` for ``timeouts.set_aside`` seconds, with a one-line warning naming it."""
    write_json(aside_path(host), {"since": time.time(), "error": str(error)}, indent=None, concurrent=True)
    print(f"knowledge-map tensor: warning: {host} did not take a job ({error}); trying other hosts, and passing "
          f"{host} over for {cluster.timeouts.set_aside:.0f} s", file=sys.stderr)


def hosts_aside(cluster: Cluster) -> frozenset[str]:
    """Hosts set aside less than ``timeouts.set_aside`` seconds ago."""
    now, names = time.time(), set()
    for host in cluster.hosts:
        try:
            since = json.loads(aside_path(host.name).read_text())["since"]
        except (OSError, ValueError, KeyError):
            continue
        if now - since < cluster.timeouts.set_aside:
            names.add(host.name)
    return frozenset(names)
