"""Submit, status and cancel commands that run Snakemake jobs on SSH GPU hosts.

The ``tensor`` profile uses Snakemake's cluster-generic executor; these are
its ``submit``, ``status`` and ``cancel`` commands.  Snakemake keeps doing
the scheduling (``--jobs``, retries, the DAG); this module only decides
which host a job goes to and carries it there:

- GPU jobs (``resources: gpu`` > 0) go to the host with the most free GPUs
  (GPUs in ``hosts.yaml`` minus this run's jobs still active there); on the
  host, :mod:`knowledge_map.gpu_slots` claims the GPU with ``flock`` and sets
  ``CUDA_VISIBLE_DEVICES``.  CPU jobs run on this machine, where Snakemake runs.
- Without a shared filesystem the workflow source, the config files and the
  job's inputs are rsynced to ``<root>/mirror/<local absolute path>`` on the
  host, hard-linked into a per-job folder, and the jobscript's absolute
  paths are rewritten to point there; the files the job wrote come back by
  rsync before the job is reported successful.  With ``shared_fs: true`` the
  jobscript runs unchanged.
- The status command asks the host: an exit code, a job still holding its
  ``alive.lock``, or neither (it died: failed).

- Every ssh and rsync call goes through one runner (:func:`run_command`):
  a connect timeout, keep-alives, a bounded duration, and a one-line error.
  A host that fails to take a job is set aside for a while (a one-line
  warning names it) and the job goes to the next host; submitting fails
  only when no host takes it.  A finished job's folder is removed from its
  host once its outputs are back (a failed one stays, for inspection).

Connection details (user, port, keys, ProxyJump, ControlMaster) come from
``~/.ssh/config`` and the user's agent; nothing secret is ever read or written.
Job records live in ``.snakemake/knowledge-map-tensor/jobs/`` of the workdir.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge_map.errors import KnowledgeMapError

LOCAL = "local"
#: Consecutive failed status checks (ssh errors) after which a job counts as failed.
MAX_STATUS_ERRORS = 5
STATE_DIR = Path(".snakemake/knowledge-map-tensor")
#: Never copied to a host: version control, results, Snakemake's state, caches.
SOURCE_EXCLUDES = (".git", ".snakemake", "/results", "/site/data", "__pycache__", ".pytest_cache", ".ruff_cache")
HOST_KEYS = {"gpus", "python", "root", "slots_dir"}
TOP_KEYS = {"hosts", "shared_fs", "python", "root", "slots_dir", "ssh_config", "timeouts"}


@dataclass(frozen=True)
class Timeouts:
    """Seconds: ``connect`` (TCP and ssh handshake), ``command`` (one command on a host), ``transfer``
    (one rsync), ``set_aside`` (how long a host that failed to take a job is passed over)."""

    connect: float = 10
    command: float = 120
    transfer: float = 3600
    set_aside: float = 300


@dataclass(frozen=True)
class Host:
    """One GPU server: its ssh alias, GPU count and where jobs live on it."""

    name: str
    gpus: int
    python: str = "python3"
    root: str = "~/knowledge-map-jobs"
    slots_dir: str = "/tmp/knowledge-map-gpu-slots"


@dataclass(frozen=True)
class Cluster:
    """The contents of a profile's ``hosts.yaml``."""

    hosts: tuple[Host, ...]
    shared_fs: bool = False
    ssh_config: str | None = None
    source: str = ""
    timeouts: Timeouts = Timeouts()

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KnowledgeMapError(f"{self.source}: no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")


def parse_hosts(data: dict, source: str = "hosts.yaml") -> Cluster:
    """Check and read a hosts mapping: ``{hosts: {alias: gpus | {gpus, python, root, slots_dir}}, ...}``.

    Top-level ``python``, ``root`` and ``slots_dir`` are defaults for every
    host; a host's own mapping overrides them.
    """
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict) or not data["hosts"]:
        raise KnowledgeMapError(f"{source}: expected a 'hosts:' mapping of ssh alias -> GPU count")
    unknown = set(data) - TOP_KEYS
    if unknown:
        allowed = ", ".join(sorted(TOP_KEYS))
        raise KnowledgeMapError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    defaults = {key: data[key] for key in ("python", "root", "slots_dir") if data.get(key) is not None}
    hosts = []
    for name, spec in data["hosts"].items():
        spec = {"gpus": spec} if not isinstance(spec, dict) else spec
        unknown = set(spec) - HOST_KEYS
        if unknown:
            raise KnowledgeMapError(f"{source}: host {name}: unknown key(s) {', '.join(sorted(unknown))}")
        gpus = spec.get("gpus")
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
            raise KnowledgeMapError(f"{source}: host {name}: gpus must be a whole number >= 1, got {gpus!r}")
        if name == LOCAL or not isinstance(name, str) or name.startswith("-") or not name.strip():
            raise KnowledgeMapError(f"{source}: {name!r} cannot be a host alias")
        hosts.append(Host(name=name, **{**defaults, **spec}))
    shared = data.get("shared_fs", False)
    if not isinstance(shared, bool):
        raise KnowledgeMapError(f"{source}: shared_fs must be true or false, got {shared!r}")
    ssh_config = data.get("ssh_config")
    if ssh_config is not None:
        ssh_config = str(Path(source).parent / os.path.expanduser(ssh_config))
    return Cluster(tuple(hosts), shared, ssh_config, source, parse_timeouts(data.get("timeouts") or {}, source))


def parse_timeouts(data: dict, source: str) -> Timeouts:
    """``timeouts: {connect, command, transfer, set_aside}`` (seconds, each optional) from hosts.yaml."""
    allowed = set(Timeouts.__dataclass_fields__)
    if not isinstance(data, dict) or set(data) - allowed:
        raise KnowledgeMapError(f"{source}: timeouts must be a mapping of {', '.join(sorted(allowed))} to seconds")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise KnowledgeMapError(f"{source}: timeouts.{key} must be a number of seconds > 0, got {value!r}")
    return Timeouts(**data)


def load_hosts(path: str | os.PathLike) -> Cluster:
    """Read and check a profile's ``hosts.yaml``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise KnowledgeMapError(f"cannot read the tensor hosts file {path}: {error.strerror}") from error
    return parse_hosts(data, str(path))


def rank_hosts(cluster: Cluster, active: dict[str, int], aside: frozenset[str] = frozenset()) -> list[Host]:
    """Hosts in the order to try: most free GPUs (GPUs minus ``active`` jobs there) first, ties by listing order.

    Hosts set ``aside`` (they recently failed to take a job) come last: they
    are tried only when every other host fails too.  With ``--jobs`` equal
    to the total GPU count every GPU gets a job; when all are busy a job
    still goes to the least-loaded host and waits there for a GPU slot.
    """
    def preference(host: Host):
        return (host.name in aside, -(host.gpus - active.get(host.name, 0)), cluster.hosts.index(host))

    return sorted(cluster.hosts, key=preference)


def choose_host(cluster: Cluster, active: dict[str, int], aside: frozenset[str] = frozenset()) -> Host:
    """The first host of :func:`rank_hosts`."""
    return rank_hosts(cluster, active, aside)[0]


# -- hosts set aside ------------------------------------------------------------------------------


def aside_path(host: str) -> Path:
    return STATE_DIR / "aside" / host


def set_aside(cluster: Cluster, host: str, error: KnowledgeMapError) -> None:
    """Pass over ``host`` for ``timeouts.set_aside`` seconds, with a one-line warning naming it."""
    path = aside_path(host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"since": time.time(), "error": str(error)}))
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


# -- jobscripts ----------------------------------------------------------------------------------


@dataclass
class Jobscript:
    """What Snakemake's cluster-generic executor hands the submit command."""

    properties: dict
    command: str
    path: str = ""
    tokens: list[str] = field(default_factory=list)

    @property
    def workdir(self) -> str:
        """The folder the job runs in (the jobscript starts with ``cd <workdir> &&``)."""
        if len(self.tokens) < 2 or self.tokens[0] != "cd":
            raise KnowledgeMapError(f"jobscript {self.path}: expected it to start with 'cd <workdir>'")
        return self.tokens[1]

    def option(self, name: str) -> list[str]:
        """The values after ``--name`` up to the next option or shell operator."""
        if name not in self.tokens:
            return []
        values = []
        for token in self.tokens[self.tokens.index(name) + 1 :]:
            if token.startswith("--") or token in OPERATORS:
                break
            values.append(token)
        return values

    @property
    def snakefile(self) -> str:
        return self.option("--snakefile")[0]

    @property
    def gpus(self) -> int:
        return int(self.properties.get("resources", {}).get("gpu", 0) or 0)


OPERATORS = ("&&", "||", ";", "|")


def parse_jobscript(text: str, path: str = "") -> Jobscript:
    """Read the properties line and the command line of a Snakemake jobscript."""
    properties, command = None, None
    for line in text.splitlines():
        if line.startswith("# properties = "):
            properties = json.loads(line[len("# properties = ") :])
        elif line.strip() and not line.startswith("#"):
            command = line.strip()
    if properties is None or command is None:
        raise KnowledgeMapError(f"jobscript {path}: no '# properties' line or no command (not a Snakemake jobscript?)")
    return Jobscript(properties, command, path, shlex.split(command))


def rewrite_command(job: Jobscript, work: str, mirror: str, python: str) -> str:
    """The jobscript's command with local absolute paths moved to the host.

    Paths inside the local workdir go to the job's folder ``work``; every
    other absolute path goes under ``mirror`` (same path, new root); the
    Python that runs Snakemake becomes the host's ``python``.
    """
    out = []
    for index, token in enumerate(job.tokens):
        if token in OPERATORS:
            out.append(token)
        elif index > 0 and job.tokens[index - 1] == "&&" and job.tokens[index - 3 : index - 1][:1] == ["cd"]:
            out.append(shlex.quote(python))
        else:
            out.append(shlex.quote(map_path(token, job.workdir, work, mirror)))
    return " ".join(out)


def map_path(path: str, workdir: str, work: str, mirror: str) -> str:
    """Where local absolute ``path`` lives on the host: under the job folder ``work`` or under ``mirror``."""
    workdir = workdir.rstrip("/")
    if path == workdir or path.startswith(workdir + "/"):
        return work + path[len(workdir) :]
    if path.startswith("/"):
        return mirror.rstrip("/") + path
    return path


def staged_paths(job: Jobscript) -> list[str]:
    """Local absolute paths a host needs for ``job``: the source folder, config files and inputs."""
    workdir = job.workdir
    inputs = [p if os.path.isabs(p) else os.path.join(workdir, p) for p in job.properties.get("input") or []]
    configs = job.option("--configfiles") + job.option("--configfile")
    return [os.path.dirname(job.snakefile), *configs, *inputs]


# -- running commands on a host -------------------------------------------------------------------


def ssh_base(cluster: Cluster) -> list[str]:
    """``ssh`` in batch mode (never prompts) with a connect timeout and keep-alives, and the profile's ssh config.

    ``ConnectTimeout`` bounds the TCP connection and the ssh handshake (a host
    that accepts and never answers); the keep-alives end a session whose
    host stops answering for 3 x 5 s.
    """
    command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(cluster.timeouts.connect))}",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
    if cluster.ssh_config:
        command += ["-F", cluster.ssh_config]
    return command


def run_command(argv: list[str], what: str, timeout: float, stdin: str | None = None) -> str:
    """The one runner of every ssh and rsync call: at most ``timeout`` seconds, stdout back, one-line errors.

    The command runs in its own session, so a Ctrl-C to Snakemake's process
    group cannot cut it off half-way, and on timeout its whole process group
    (rsync's ssh included) is killed.
    """
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as error:
        raise KnowledgeMapError(f"{what}: cannot run {argv[0]}: {error.strerror}") from error
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise KnowledgeMapError(f"{what}: no result after {timeout:.0f} s (host hung or unreachable); gave up") from None
    if process.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        detail = lines[-1][-300:] if lines else "no error message"
        raise KnowledgeMapError(f"{what}: failed (exit {process.returncode}): {detail}")
    return stdout


def on_host(cluster: Cluster, host: str, script: str, stdin: str | None = None, timeout: float | None = None) -> str:
    """Run a shell ``script`` on ``host`` (``local`` = here) through :func:`run_command`; return its stdout."""
    command = ["bash", "-c", script] if host == LOCAL else [*ssh_base(cluster), host, script]
    return run_command(command, host, timeout or cluster.timeouts.command, stdin)


def rsync(cluster: Cluster, *args: str) -> None:
    """``rsync -a`` over the same ssh as every other command, through :func:`run_command`.

    ``--timeout`` ends a transfer that moves no data for ``timeouts.command``
    seconds; the whole transfer is bounded by ``timeouts.transfer``.
    """
    shell = " ".join(shlex.quote(part) for part in ssh_base(cluster))
    argv = ["rsync", "-a", f"--timeout={max(1, round(cluster.timeouts.command))}", "-e", shell, *args]
    run_command(argv, f"rsync {' '.join(args[-2:])}", cluster.timeouts.transfer)


def remote_path(path: str) -> str:
    """A host path for a shell: ``~/x`` becomes ``"$HOME"/x`` so the host's home is used."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + shlex.quote(path[1:]) if len(path) > 1 else '"$HOME"'
    return shlex.quote(path)


def host_root(cluster: Cluster, host: Host) -> str:
    """The host's job root as an absolute path (created on first use, cached per workdir).

    The cache records the ``root:`` it was resolved from, so editing
    hosts.yaml takes effect on the next job.
    """
    cache = STATE_DIR / "roots" / f"{host.name}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        cached = json.loads(cache.read_text())
        if cached["configured"] == host.root:
            return cached["resolved"]
    root_path = remote_path(host.root)
    root = on_host(cluster, host.name, f"mkdir -p {root_path} && cd {root_path} && pwd").strip()
    if not root.startswith("/"):
        raise KnowledgeMapError(f"{host.name}: root {host.root!r} did not resolve to an absolute path (got {root!r})")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"configured": host.root, "resolved": root}))
    return root


# -- job records ----------------------------------------------------------------------------------


def record_path(jobid: str) -> Path:
    return STATE_DIR / "jobs" / f"{jobid.replace('/', '__')}.json"


def read_record(jobid: str) -> dict:
    try:
        return json.loads(record_path(jobid).read_text())
    except FileNotFoundError as error:
        raise KnowledgeMapError(f"no record of tensor job {jobid} in {STATE_DIR.resolve()}") from error


def write_record(record: dict) -> None:
    path = record_path(record["jobid"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, path)


def active_jobs(run: str) -> dict[str, int]:
    """GPUs in use per host by this Snakemake run's jobs not yet finished."""
    counts: dict[str, int] = {}
    for path in (STATE_DIR / "jobs").glob("*.json"):
        record = json.loads(path.read_text())
        if record["run"] == run and record["state"] in ("submitting", "submitted") and record["gpus"] > 0:
            counts[record["host"]] = counts.get(record["host"], 0) + record["gpus"]
    return counts


# -- submit / status / cancel ---------------------------------------------------------------------


def launch_script(job_dir: str, python: str, pythonpath: str, host: Host, gpus: int, collect: str | None,
                  links: list[tuple[str, str]], mkdirs: list[str]) -> str:
    """Shell that links staged files into the job folder and starts the job detached under its GPU lock.

    It returns once the job holds its ``alive.lock`` (``started.json``
    exists), so a status check never mistakes a starting job for a dead one.
    """
    q = shlex.quote
    lines = ["set -e", f"mkdir -p {q(job_dir)}", f"cat > {q(job_dir)}/jobscript.sh"]
    for source, target in links:
        lines.append(f"if [ -d {q(source)} ]; then mkdir -p {q(target)} && cp -al {q(source)}/. {q(target)}/; "
                     f"else mkdir -p \"$(dirname {q(target)})\" && ln -f {q(source)} {q(target)}; fi")
    lines += [f"mkdir -p {q(d)}" for d in mkdirs]
    lines.append(f"touch {q(job_dir)}/staged")
    collect_arg = f"--collect {q(collect)} " if collect else ""
    lines.append(
        f"PYTHONPATH={q(pythonpath)} setsid nohup {q(python)} -m knowledge_map.gpu_slots --job-dir {q(job_dir)} "
        f"--slots-dir {q(host.slots_dir)} --n-gpus {host.gpus} --gpus {gpus} --host {q(host.name)} {collect_arg}"
        f"-- sh {q(job_dir)}/jobscript.sh > {q(job_dir)}/job.out 2>&1 < /dev/null &"
    )
    lines.append(f"for i in $(seq 600); do [ -e {q(job_dir)}/started.json ] && exit 0; sleep 0.1; done")
    lines.append(f"echo 'job did not start; see {job_dir}/job.out' >&2; exit 1")
    return "\n".join(lines)


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


def submit(cluster: Cluster, jobscript_path: str) -> str:
    """Start the job on a host and return its external id ``<host>/<name>``.

    A Ctrl-C that reaches this command while it launches the job would kill
    it before Snakemake learns the job id, and Snakemake could then never
    cancel the job.  So the launch finishes first, and a job whose submit was
    interrupted is cancelled here, before exiting with an error.
    """
    with deferred_interrupts() as interrupted:
        jobid = launch(cluster, jobscript_path)
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
    """Shell printing the job's state: its exit record, ``running`` or ``dead``."""
    d = shlex.quote(job_dir)
    return (f"cd {d} 2>/dev/null || {{ echo dead; exit 0; }}; "
            "if [ -e exitcode ]; then cat exitcode; "
            "elif flock -n alive.lock true; then if [ -e exitcode ]; then cat exitcode; else echo dead; fi; "
            "else echo running; fi; "
            "[ -e started.json ] && { echo; cat started.json; }; true")


def parse_probe(text: str) -> tuple[str, int | None, dict, str | None]:
    """``(state, returncode, started, error)`` from :func:`probe_script`'s output.

    ``error`` is the one line :mod:`knowledge_map.gpu_slots` records when a
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
    ``knowledge_map.progress`` shows live progress without a shared filesystem.
    """
    record = read_record(jobid)
    if record["state"] != "submitted":
        return record["state"]
    try:
        probe = on_host(cluster, record["host"], probe_script(record["job_dir"]), timeout=60)
    except KnowledgeMapError as error:
        # A network hiccup is not a failed job; a host unreachable for a few checks in a row is.
        errors = record.get("status_errors", 0) + 1
        print(f"knowledge-map tensor status: {jobid}: {error}", file=sys.stderr)
        if errors < MAX_STATUS_ERRORS:
            write_record({**record, "status_errors": errors})
            return "running"
        write_record({**record, "state": "failed", "finished": time.time(), "error": str(error)})
        return "failed"
    state, code, started, error = parse_probe(probe)
    remote = record["work"] is not None
    if state == "running":
        if remote and started.get("gpus") is not None:
            fetch(cluster, record, record["logs"])
        return state
    if remote:
        fetch(cluster, record, None if state == "success" else record["logs"])
    finished = {**record, "state": state, "returncode": code, "started": started, "finished": time.time()}
    if error:
        finished["error"] = error
        print(f"knowledge-map tensor: {jobid} failed on {record['host']}: {error}", file=sys.stderr)
    write_record(finished)
    if state == "success":
        remove_job_dir(cluster, finished)
    return state


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
    """Shell that cancels jobs in ``job_dirs``, started or not.

    It leaves the ``cancelled`` marker (a job not yet started then never
    runs), waits up to 10 s for a starting job's process group, then sends
    SIGTERM and, two seconds later, SIGKILL to it.
    """
    q = shlex.quote
    lines = []
    for d in job_dirs:
        lines.append(f"( mkdir -p {q(d)} && touch {q(d)}/cancelled; "
                     f"for i in $(seq 50); do [ -s {q(d)}/pgid ] && break; sleep 0.2; done; "
                     f"g=$(cat {q(d)}/pgid 2>/dev/null); [ -n \"$g\" ] || exit 0; "
                     f"kill -TERM -- -$g 2>/dev/null; sleep 2; kill -KILL -- -$g 2>/dev/null ) &")
    lines.append("wait; true")
    return "\n".join(lines)


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


def main(argv: list[str] | None = None) -> int:
    """``python -m knowledge_map.tensor {submit JOBSCRIPT | status JOBID | cancel JOBID...} --hosts hosts.yaml``"""
    parser = argparse.ArgumentParser(prog="python -m knowledge_map.tensor", description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", required=True, help="the profile's hosts.yaml")
    parser.add_argument("action", choices=("submit", "status", "cancel"))
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    try:
        cluster = load_hosts(args.hosts)
        if args.action == "submit":
            print(submit(cluster, args.args[-1]))
        elif args.action == "status":
            print(status(cluster, args.args[0]))
        else:
            cancel(cluster, args.args)
    except KnowledgeMapError as error:
        print(f"knowledge-map tensor {args.action}: {error}", file=sys.stderr)
        if args.action == "status":
            print("failed")
            return 0
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
