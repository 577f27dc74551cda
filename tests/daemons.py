"""Real daemons for the cluster tests: an sshd on loopback and a one-node SLURM.

Each is started in a temporary folder with its own keys, ports and state,
and stopped by the fixture that started it.  Nothing here is a stand-in: the
tests talk to the real ``sshd``, ``munged``, ``slurmctld`` and ``slurmd``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
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


def snakemake_command(workdir: Path, *args: str, configfile: Path | None = None,
                      snakefile: Path = REPO / "Snakefile") -> list[str]:
    """The one Snakemake command line of the tests: ``snakefile`` run in ``workdir`` with ``args``.

    ``--configfile`` comes last, because it takes every word after it.
    """
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args]
    return command + (["--configfile", str(configfile)] if configfile is not None else [])


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


SLURM_DAEMONS = ("munged", "slurmctld", "slurmd")


def srun_with_conf(folder: Path, conf: Path) -> Path:
    """A folder holding ``srun``: the real srun, told where this cluster's slurm.conf is.

    A real cluster's config is where every Slurm command finds it without
    help (``/etc/slurm/slurm.conf``, or ``/run/slurm/conf`` in configless
    mode); this one lives in a temporary folder and is named by
    ``SLURM_CONF``.  The slurm-jobstep executor runs each job's step with
    ``srun`` after removing every ``SLURM_*`` variable it does not know from
    the environment, ``SLURM_CONF`` included, so that srun would find no
    config ("fetch_config: DNS SRV lookup failed").  This wrapper, first on
    the job's PATH (sbatch passes ``--export=ALL``), puts ``SLURM_CONF`` back
    and runs the real srun: the job step is still a real Slurm step.
    Configless mode is no way out here: slurmd fetches its config before it
    knows the test's munge socket, and would write ``/run/slurm/conf``.
    """
    real = shutil.which("srun")
    assert real, "srun not found"
    folder = folder / "bin"
    folder.mkdir()
    wrapper = folder / "srun"
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(conf))}\nexport SLURM_CONF\nexec {shlex.quote(real)} "$@"\n')
    wrapper.chmod(0o755)
    return folder


def start_slurm(folder: Path, cpus: int = 8, gpus: int = 4) -> tuple[list[subprocess.Popen], dict]:
    """munged + slurmctld + slurmd for a one-node cluster with fake GPUs; returns daemons and the env to use.

    The node claims ``cpus`` CPUs (``SlurmdParameters=config_overrides``
    lets it claim more than the machine has) and ``gpus`` GPUs whose
    ``File=`` entries are character devices, as gres.conf requires;
    partitions ``cpu`` and ``gpu`` match the placeholders in profiles/slurm.
    """
    host = socket.gethostname().split(".")[0]
    (folder / "state").mkdir(parents=True)
    (folder / "spool").mkdir()
    (folder / "dev").mkdir()
    for index in range(gpus):
        os.mknod(folder / "dev" / f"nvidia{index}", 0o666 | 0o020000, os.makedev(1, 3))
    subprocess.run(["mungekey", "-c", "-f", "-k", str(folder / "munge.key")], check=True, capture_output=True)
    socket_path = folder / "munge.socket"
    conf = folder / "slurm.conf"
    conf.write_text(f"""ClusterName=kmtest
SlurmctldHost={host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={socket_path}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} CPUs={cpus} RealMemory=64000 Gres=gpu:{gpus} State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP
""")
    (folder / "gres.conf").write_text(f"NodeName={host} Name=gpu File={folder / 'dev'}/nvidia[0-{gpus - 1}]\n")
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{srun_with_conf(folder, conf)}{os.pathsep}{os.environ['PATH']}"}
    logs = open(folder / "daemons.log", "w")  # noqa: SIM115
    daemons = [subprocess.Popen(
        ["munged", "-F", "--force", "-S", str(socket_path), "--key-file", str(folder / "munge.key"),
         "--pid-file", str(folder / "munged.pid"), "--log-file", str(folder / "munged.log"),
         "--seed-file", str(folder / "munge.seed")], stdout=logs, stderr=logs, env=env)]
    wait_for(socket_path.exists, 20, "munged's socket")
    daemons.append(subprocess.Popen(["slurmctld", "-D", "-i"], stdout=logs, stderr=logs, env=env))
    time.sleep(1)
    daemons.append(subprocess.Popen(["slurmd", "-D"], stdout=logs, stderr=logs, env=env))

    def idle():
        state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env).stdout
        return "idle" in state

    try:
        wait_for(idle, 60, "the SLURM node to be idle")
    except AssertionError:
        stop_slurm(daemons, env)
        raise
    return daemons, env


def stop_slurm(daemons: list[subprocess.Popen], env: dict) -> None:
    subprocess.run(["scancel", "--user", os.environ.get("USER", "root")], env=env, capture_output=True)
    for daemon in reversed(daemons):
        stop(daemon)
