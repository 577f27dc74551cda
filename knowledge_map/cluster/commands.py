"""The ``submit``, ``status`` and ``cancel`` commands of the tensor profile (see :mod:`knowledge_map.cluster`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from knowledge_map.cluster.hosts import LOCAL, Cluster, Host, rank_hosts
from knowledge_map.cluster.jobscript import Jobscript, map_path, parse_jobscript, rewrite_command, staged_paths
from knowledge_map.cluster.records import STATE_DIR, active_jobs, hosts_aside, read_record, set_aside, write_record
from knowledge_map.cluster.remote import host_root, on_host, rsync, shell_script, ssh_base
from knowledge_map.errors import KnowledgeMapError

#: Consecutive failed status checks (ssh errors) after which a job counts as failed.
MAX_STATUS_ERRORS = 5
#: Never copied to a host: version control, results, Snakemake's state, caches.
SOURCE_EXCLUDES = (".git", ".snakemake", "/results", "/site/data", "__pycache__", ".pytest_cache", ".ruff_cache")


def launch_script(job_dir: str, python: str, pythonpath: str, host: Host, gpus: int, collect: str | None,
                  links: list[tuple[str, str]], mkdirs: list[str]) -> str:
    """``scripts/launch.sh``: link staged files into the job folder and start the job detached under its GPU lock.

    It returns once the job holds its ``alive.lock`` (``started.json``
    exists), so a status check never mistakes a starting job for a dead one.
    """
    pairs = [path for link in links for path in link]
    return shell_script("launch", job_dir, python, pythonpath, host.slots_dir, host.gpus, gpus, host.name, collect or "",
                        len(links), *pairs, *mkdirs)


@contextlib.contextmanager
def deferred_interrupts():
    """Hold SIGINT/SIGTERM until the block ends; yield the list of signals that arrived."""
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: arrived.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield arrived
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def submit(cluster: Cluster, jobscript_path: str, announce: Callable[[str], None] | None = None) -> str:
    """Start the job on a host and return its external id ``<host>/<name>``.

    A Ctrl-C that reaches this command while it launches the job would kill
    it before Snakemake learns the job id, and Snakemake could then never
    cancel the job.  So the launch finishes first, and a job whose submit was
    interrupted is cancelled here, before exiting with an error.  The same
    holds until the id is handed over: ``announce`` (the command line's
    print-and-exit) runs while interrupts are still held, because a Ctrl-C
    that arrives after the launch, during Python's own shutdown, would be
    lost while Snakemake, interrupted too, never reads the id.
    """
    with deferred_interrupts() as interrupted:
        jobid = launch(cluster, jobscript_path)
        if not interrupted and announce is not None:
            announce(jobid)
    if interrupted:
        cancel(cluster, [jobid])
        raise KnowledgeMapError(f"interrupted while submitting {jobid}; the job was cancelled")
    return jobid


def launch(cluster: Cluster, jobscript_path: str) -> str:
    """Start the job on the first host that takes it (:func:`rank_hosts`); return its id.

    CPU jobs run here.  A host that fails (unreachable, hung, out of disk,
    no Python) is set aside with a warning and the next one is tried; only
    when every host fails is the submit an error, naming each host's failure.
    """
    job = parse_jobscript(Path(jobscript_path).read_text(), jobscript_path)
    run = Path(jobscript_path).parent.name
    name = f"{run}-{job.properties['jobid']}-{job.properties.get('rule', 'group')}-{secrets.token_hex(3)}"
    if job.gpus == 0:
        return launch_on(cluster, job, Host(LOCAL, 1), run, name)
    failures = []
    for host in rank_hosts(cluster, active_jobs(run), hosts_aside(cluster)):
        try:
            return launch_on(cluster, job, host, run, name)
        except KnowledgeMapError as error:
            set_aside(cluster, host.name, error)
            failures.append(f"{host.name}: {error}")
    raise KnowledgeMapError(f"no host took the job ({'; '.join(failures)})")


def launch_on(cluster: Cluster, job: Jobscript, host: Host, run: str, name: str) -> str:
    """Stage the job's inputs on ``host``, start it under its GPU lock and record it; return its id."""
    workdir = job.workdir
    source = os.path.dirname(job.snakefile)
    # With a shared filesystem the host sees the same paths, the Python environment included.
    python = job.tokens[job.tokens.index("&&") + 1]
    if host.name == LOCAL:
        root, shared = str((STATE_DIR / "local").resolve()), True
    else:
        root, shared = host_root(cluster, host), cluster.shared_fs
        python = python if shared else host.python
    job_dir = f"{root}/jobs/{name}"
    links: list[tuple[str, str]] = []
    mkdirs: list[str] = []
    if shared:
        command, pythonpath, collect = job.command, os.environ.get("PYTHONPATH", source), None
    else:
        mirror, work = f"{root}/mirror", f"{job_dir}/work"
        sync_source(cluster, source, host, mirror)
        files = [p for p in staged_paths(job)[1:] if os.path.exists(p)]
        if files:
            rsync(cluster, "-R", *files, f"{host.name}:{mirror}/")
        for path in [source, *files]:
            if path == workdir or path.startswith(workdir.rstrip("/") + "/"):
                links.append((mirror + path, work + path[len(workdir.rstrip("/")) :]))
        command = rewrite_command(job, work, mirror, python)
        # Snakemake's per-run temp folder, which the job waits for.
        mkdirs = [map_path(p, workdir, work, mirror) for p in job.option("--wait-for-files") if os.path.isdir(p)]
        pythonpath, collect = mirror + source, work
    script = launch_script(job_dir, python, pythonpath, host, job.gpus, collect, links, mkdirs)
    record = {
        "jobid": f"{host.name}/{name}", "host": host.name, "run": run, "rule": job.properties.get("rule"),
        "wildcards": job.properties.get("wildcards", {}), "snakemake_jobid": job.properties["jobid"],
        "gpus": job.gpus, "job_dir": job_dir, "work": None if shared else f"{job_dir}/work",
        "logs": job.properties.get("log") or [], "workdir": workdir, "state": "submitting",
    }
    # Recorded before the launch, so a cancel of this run finds the job even if this process is killed.
    write_record(record)
    try:
        on_host(cluster, host.name, script, stdin=f"#!/bin/sh\n{command}\n")
    except KnowledgeMapError:
        # It may have started after all (the answer was lost): make sure it never runs beside its retry.
        write_record({**record, "state": "failed", "finished": time.time()})
        kill_detached(cluster, host.name, [job_dir])
        raise
    if read_record(record["jobid"])["state"] == "submitting":
        write_record({**record, "state": "submitted", "submitted": time.time()})
    return f"{host.name}/{name}"


def sync_source(cluster: Cluster, source: str, host: Host, mirror: str) -> None:
    """Mirror the workflow's source folder (Snakefile, rules, scripts, package, config) on the host.

    rsync sends only what changed, so after the first job this costs one
    round trip; results and Snakemake's state are never sent.
    """
    excludes = [f"--exclude={pattern}" for pattern in SOURCE_EXCLUDES]
    rsync(cluster, "--delete", *excludes, "--rsync-path", f"mkdir -p {shlex.quote(mirror + source)} && rsync",
          f"{source}/", f"{host.name}:{mirror}{source}/")


def probe_script(job_dir: str) -> str:
    """``scripts/probe.sh``: print the job's state: its exit record, ``running`` or ``dead``."""
    return shell_script("probe", job_dir)


def parse_probe(text: str) -> tuple[str, int | None, dict, str | None]:
    """``(state, returncode, started, error)`` from :func:`probe_script`'s output.

    ``error`` is the one line :mod:`knowledge_map.cluster.gpu_slots` records when a
    job could not start (an unusable GPU lock), else None.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else "dead"
    started = json.loads(lines[1]) if len(lines) > 1 else {}
    if first.startswith("{"):
        ended = json.loads(first)
        code = ended["returncode"]
        return ("success" if code == 0 else "failed"), code, started, ended.get("error")
    return ("running" if first == "running" else "failed"), None, started, None


def fetch(cluster: Cluster, record: dict, paths: list[str] | None) -> None:
    """Bring files from the job's folder back into the local workdir: ``paths``, or everything it wrote."""
    source = f"{record['host']}:{record['work']}/"
    if paths is None:
        rsync(cluster, f"--files-from=:{record['job_dir']}/produced.txt", source, record["workdir"] + "/")
    elif paths:
        listing = STATE_DIR / "jobs" / f"{record['jobid'].replace('/', '__')}.fetch"
        listing.write_text("".join(f"{p}\n" for p in paths))
        rsync(cluster, "--ignore-missing-args", f"--files-from={listing}", source, record["workdir"] + "/")


def status(cluster: Cluster, jobid: str) -> str:
    """``running``, ``success`` or ``failed`` for a job, bringing its files back when it ends.

    While a remote job runs its rule log is copied back on every check, so
    ``knowledge_map.cluster.progress`` shows live progress without a shared filesystem.
    """
    record = read_record(jobid)
    if record["state"] != "submitted":
        return record["state"]
    try:
        probe = on_host(cluster, record["host"], probe_script(record["job_dir"]), timeout=60)
    except KnowledgeMapError as error:
        return hiccup(record, str(error))
    state, code, started, error = parse_probe(probe)
    remote = record["work"] is not None
    if state == "running":
        if record.get("status_errors"):  # reached again: the count is of failures in a row
            write_record({**record, "status_errors": 0})
        if remote and started.get("gpus") is not None:
            try:
                fetch(cluster, record, record["logs"])
            except KnowledgeMapError as failure:  # the live log copy only: never a reason to fail the job
                print(f"knowledge-map tensor status: {jobid}: could not copy its log yet: {failure}", file=sys.stderr)
        return state
    if remote:
        try:
            fetch(cluster, record, None if state == "success" else record["logs"])
        except KnowledgeMapError as failure:
            # The job ended and its outputs are on the host: a failed copy is retried on the next check.
            return hiccup(record, f"could not copy its outputs back from {record['host']}:{record['job_dir']} "
                                  f"(they stay there): {failure}")
    finished = {**record, "state": state, "returncode": code, "started": started, "finished": time.time()}
    if error:
        finished["error"] = error
        print(f"knowledge-map tensor: {jobid} failed on {record['host']}: {error}", file=sys.stderr)
    write_record(finished)
    if state == "success":
        remove_job_dir(cluster, finished)
    return state


def hiccup(record: dict, error: str) -> str:
    """A check that could not reach the host or copy the job's files back: ``running`` until it has happened
    :data:`MAX_STATUS_ERRORS` times in a row, then ``failed`` with ``error`` recorded.

    A network hiccup is not a failed job: Snakemake would start the shard
    again elsewhere while this one still holds its GPU, or redo finished work.
    """
    errors = record.get("status_errors", 0) + 1
    print(f"knowledge-map tensor status: {record['jobid']}: {error}", file=sys.stderr)
    if errors < MAX_STATUS_ERRORS:
        write_record({**record, "status_errors": errors})
        return "running"
    write_record({**record, "state": "failed", "finished": time.time(), "error": error})
    return "failed"


def remove_job_dir(cluster: Cluster, record: dict) -> None:
    """Delete a finished job's folder on its host, its outputs being back (failed jobs keep theirs).

    Only the job's own folder goes (its staged inputs are hard links into
    the mirror, which stays); a failure to remove is a warning, not a
    failed job.
    """
    job_dir = record["job_dir"]
    if f"/jobs/{record['jobid'].split('/', 1)[1]}" not in job_dir:
        return
    try:
        on_host(cluster, record["host"], f"rm -rf {shlex.quote(job_dir)}")
    except KnowledgeMapError as error:
        print(f"knowledge-map tensor: warning: could not remove {job_dir} on {record['host']}: {error}",
              file=sys.stderr)
        return
    write_record({**record, "removed": time.time()})


def jobs_to_cancel(jobids: list[str]) -> list[dict]:
    """The records of ``jobids`` and of every other unfinished job of the same Snakemake runs.

    A Ctrl-C can reach Snakemake after a submit started a job but before
    Snakemake learnt its id; that job is found here through its run.
    """
    records = {jobid: read_record(jobid) for jobid in jobids}
    runs = {record["run"] for record in records.values()}
    for path in sorted((STATE_DIR / "jobs").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("run") in runs and record.get("state") in ("submitting", "submitted"):
            records.setdefault(record["jobid"], record)
    return list(records.values())


def kill_script(job_dirs: list[str]) -> str:
    """``scripts/kill.sh``: cancel jobs in ``job_dirs``, started or not.

    It leaves the ``cancelled`` marker (a job not yet started then never
    runs), waits up to 10 s for a starting job's process group, then sends
    SIGTERM and, two seconds later, SIGKILL to it.
    """
    return shell_script("kill", *job_dirs)


def cancel(cluster: Cluster, jobids: list[str]) -> None:
    """Stop jobs, and every unfinished job of their runs: see :func:`kill_script`.

    Snakemake gives the cancel command two seconds, so the kills are started
    detached, one ssh per host in parallel, and not waited for.
    """
    by_host: dict[str, list[str]] = {}
    for record in jobs_to_cancel(jobids):
        by_host.setdefault(record["host"], []).append(record["job_dir"])
        write_record({**record, "state": "failed", "cancelled": time.time()})
    for host, dirs in by_host.items():
        kill_detached(cluster, host, dirs)


def kill_detached(cluster: Cluster, host: str, job_dirs: list[str]) -> None:
    """Start :func:`kill_script` for ``job_dirs`` on ``host`` in the background, bounded, and do not wait for it."""
    script = kill_script(job_dirs)
    command = ["bash", "-c", script] if host == LOCAL else [*ssh_base(cluster), host, script]
    command = ["timeout", "-s", "KILL", str(round(cluster.timeouts.command)), *command]
    subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
