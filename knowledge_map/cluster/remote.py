"""Running commands on a host: the one ssh/rsync runner, the package's shell scripts, the host's job root."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

from knowledge_map.cluster.hosts import LOCAL, Cluster, Host
from knowledge_map.cluster.records import STATE_DIR
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import write_json

#: The shell scripts run on hosts (``launch.sh``, ``probe.sh``, ``kill.sh``).
SCRIPTS = Path(__file__).with_name("scripts")


def shell_script(name: str, *args: object) -> str:
    """The text of ``scripts/<name>.sh`` with ``args`` as its positional parameters (``$1``...), ready for :func:`on_host`.

    The arguments are set with a quoted ``set --`` line before the script, so
    the script runs in the host's login shell as one command, its stdin free
    for data.
    """
    text = (SCRIPTS / f"{name}.sh").read_text()
    return f"set -- {' '.join(shlex.quote(str(arg)) for arg in args)}\n{text}"


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
    write_json(cache, {"configured": host.root, "resolved": root}, indent=None, concurrent=True)
    return root
