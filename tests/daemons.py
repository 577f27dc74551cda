"""Real daemons for the cluster tests: an sshd on loopback and a one-node SLURM.

Each is started in a temporary folder with its own keys, ports and state,
and stopped by the fixture that started it.  Nothing here is a stand-in: the
tests talk to the real ``sshd``, ``munged``, ``slurmctld`` and ``slurmd``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_sshd(folder: Path, aliases: tuple[str, ...]) -> tuple[subprocess.Popen, Path]:
    """sshd on 127.0.0.1:<free port> and an ssh config naming it ``aliases``, host key checked."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("hostkey", "userkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "userkey.pub").read_text())
    host_key = (folder / "hostkey.pub").read_text().split()
    (folder / "known_hosts").write_text(f"km-test-sshd {host_key[0]} {host_key[1]}\n")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'hostkey'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\nMaxStartups 50\nMaxSessions 50\n"
    )
    (folder / "ssh_config").write_text(
        f"Host {' '.join(aliases)}\n  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'root')}\n"
        f"  IdentityFile {folder / 'userkey'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  HostKeyAlias km-test-sshd\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {folder / 'known_hosts'}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    daemon = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "w"))  # noqa: SIM115

    def reachable():
        probe = subprocess.run(["ssh", "-F", str(folder / "ssh_config"), aliases[0], "true"], capture_output=True)
        return probe.returncode == 0

    try:
        wait_for(reachable, 20, "sshd to accept the test key")
    except AssertionError:
        daemon.terminate()
        raise
    return daemon, folder / "ssh_config"


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]


def repo_env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    """``{name: (sha256, mtime_ns)}`` of the shard files in ``folder``."""
    return {p.name: (sha256(p), p.stat().st_mtime_ns) for p in sorted(folder.glob("shard-*.h5"))}


def embeddings(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5["embeddings"][...]
