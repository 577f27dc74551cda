"""One watcher per Snakemake run: when the run ends, cancel its jobs that are still unfinished.

Snakemake cancels remote jobs on Ctrl-C by calling the cancel command with
the jobs it holds as active.  That list is not always complete: while the
executor checks job states it takes the jobs out of the list, and a Ctrl-C
that lands then (or while a submit is under way) cancels nothing; a Snakemake
killed outright cancels nothing either.  The job then runs to its end on a
GPU nobody waits for (seen in ``tests/test_ssh.py``).

So the first submit of a run starts this watcher, detached.  It waits while
the run's temporary folder (``.snakemake/tmp.*``, where the jobscripts are;
Snakemake removes it on every exit but SIGKILL) exists and the Snakemake
process lives, then cancels every job of the run whose record is not
finished (:func:`knowledge_map.cluster.commands.cancel`).  A run that ended
normally has none left.  One watcher per run: it holds a lock named after
the run for as long as it watches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from knowledge_map.cluster.commands import cancel
from knowledge_map.cluster.hosts import Cluster
from knowledge_map.cluster.records import STATE_DIR
from knowledge_map.io import exclusive_lock, process_alive

#: Seconds between two looks at the run.
POLL_SECONDS = 1.0
#: Records in these states belong to jobs that may still run.
UNFINISHED = ("submitting", "submitted")


def snakemake_pid(start: int | None = None, depth: int = 6) -> int | None:
    """The nearest ancestor process running Snakemake (the submit command's caller), or None."""
    pid = os.getppid() if start is None else start
    for _ in range(depth):
        if pid <= 1:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        if is_snakemake(argv):
            return pid
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    return None


def is_snakemake(argv: list[bytes]) -> bool:
    """Whether a command line runs Snakemake itself (``snakemake ...``, ``python [-m] snakemake ...``).

    Only the program and its first arguments count: the shell that runs a
    submit command also names ``.snakemake/tmp.*/snakejob...`` in its arguments.
    """
    head = [os.path.basename(arg) for arg in argv[:3]]
    return head[:1] == [b"snakemake"] or (len(head) > 1 and head[1] == b"snakemake") or argv[1:3] == [b"-m", b"snakemake"]


def unfinished_jobs(run: str) -> list[str]:
    """Ids of the run's jobs whose records say they may still run."""
    jobids = []
    for path in sorted((STATE_DIR / "jobs").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("run") == run and record.get("state") in UNFINISHED:
            jobids.append(record["jobid"])
    return jobids


def watch(cluster: Cluster, run_dir: str, pid: int | None, poll: float = POLL_SECONDS) -> list[str]:
    """Wait for the run to end, then cancel its unfinished jobs; return their ids ([] if another watcher has the run)."""
    run = Path(run_dir).name
    with exclusive_lock(watch_lock(run), blocking=False) as held:
        if not held:
            return []
        while Path(run_dir).is_dir() and process_alive(pid):
            time.sleep(poll)
        left = unfinished_jobs(run)
        if left:
            print(f"knowledge-map tensor: run {run} ended with {len(left)} unfinished job(s); cancelling "
                  f"{' '.join(left)}", file=sys.stderr)
            cancel(cluster, left)
        return left


def watch_lock(run: str) -> Path:
    """The lock a run's watcher holds while it watches."""
    return STATE_DIR / "watch" / f"{run}.lock"


def start_watcher(hosts_path: str, run_dir: str) -> None:
    """Start :func:`watch` for the run in the background (a no-op if one already watches it).

    Only for a submit that Snakemake called: without its process there is no
    run to outlive, and the watcher would wait for as long as the folder stays.
    """
    pid = snakemake_pid()
    if pid is None:
        return
    run = Path(run_dir).name
    with exclusive_lock(watch_lock(run), blocking=False) as free:
        if not free:
            return  # watched already
    command = [sys.executable, "-m", "knowledge_map.cluster", "--hosts", hosts_path, "watch",
               os.path.abspath(run_dir), str(pid)]
    with open(STATE_DIR / "watch" / f"{run}.log", "ab") as log:
        subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         cwd=os.getcwd())
