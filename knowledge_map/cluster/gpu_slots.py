"""GPU slots on a host without a scheduler: one ``flock`` per GPU.

Snakemake never assigns GPU ids (snakemake issue #281), so on plain SSH GPU
servers each job claims its GPUs itself.  Slot ``i`` is the lock file
``<slots_dir>/gpu-<i>.lock``; a job holds an exclusive ``flock`` on it for
its whole life and sees only that GPU through ``CUDA_VISIBLE_DEVICES``.  A
flock belongs to the open file, which the kernel closes when the last
process holding it dies, so a slot comes free even when the job is
SIGKILLed or the OOM killer strikes: no stale lock to clean up, no daemon.

:func:`run_job` is what the ``tensor`` profile starts on a host: it holds the
job's liveness lock (``alive.lock``, for the status command), takes the
slots, runs the Snakemake jobscript with the slot fds inherited (so the GPU
stays claimed while any process of the job lives), and records the exit code.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from knowledge_map.io import write_json

#: Files ``run_job`` writes into the job directory; the status command reads them.
STARTED, EXITCODE, ALIVE_LOCK, PGID, PRODUCED = "started.json", "exitcode", "alive.lock", "pgid", "produced.txt"
#: Written by the cancel command, possibly before the job starts: a job that finds it never runs.
CANCELLED = "cancelled"


#: Mode of every lock file: readable by all, which is all ``flock`` needs, whatever the creator's umask.
LOCK_MODE = 0o644


class UnusableLock(RuntimeError):
    """A lock file this user cannot open (made unreadable by hand, or by an older version under a strict umask)."""


def open_lock(path: Path) -> int:
    """A read-only fd of lock file ``path``, created readable by every user of the host if it is missing.

    The file is created with ``O_EXCL`` and then given :data:`LOCK_MODE`
    explicitly, so a job run under ``umask 077`` cannot lock other users out.
    An existing file is opened without ``O_CREAT``: in a sticky folder such as
    /tmp, Linux refuses ``O_CREAT`` on another user's file (protected_regular).
    """
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        pass
    except PermissionError as error:
        raise UnusableLock(unusable_message(path)) from error
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, LOCK_MODE)
    except FileExistsError:  # another job created it a moment ago
        return open_lock(path)
    os.fchmod(fd, LOCK_MODE)
    return fd


def unusable_message(path: Path) -> str:
    """One line naming a lock file this user cannot read, its owner and mode, and the fix."""
    try:
        info = path.stat()
        import pwd
        import stat

        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        detail = f"owner {owner}, mode {stat.filemode(info.st_mode)}"
    except OSError as error:
        detail = error.strerror or "cannot stat it"
    return (f"GPU slot lock {path} cannot be opened by this user ({detail}); every user of the host must be "
            f"able to read it: run `chmod 644 {path}` as its owner or root")


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when someone else holds it."""
    # Read-only is enough for flock, so any user can lock a slot file another user created.
    fd = open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire_slots(slots_dir: str | os.PathLike, n_gpus: int, wanted: int = 1, poll: float = 1.0,
                  timeout: float | None = None) -> dict[int, int]:
    """Claim ``wanted`` free GPU slots of ``n_gpus``; wait while all are taken.

    Returns ``{gpu index: fd}``; the claim lasts as long as the fds are open
    (in this process or any child that inherited them).  Lower indices are
    tried first so a half-busy host fills up predictably.
    """
    if wanted > n_gpus:
        raise ValueError(f"a job wants {wanted} GPUs but the host has {n_gpus}")
    directory = Path(slots_dir)
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        # Shared by every user of the host (like /tmp), so nobody's job can take a GPU another holds.
        os.chmod(directory, 0o1777)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        held: dict[int, int] = {}
        for index in range(n_gpus):
            fd = try_lock(directory / f"gpu-{index}.lock")
            if fd is not None:
                held[index] = fd
                if len(held) == wanted:
                    return held
        for fd in held.values():
            os.close(fd)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no {wanted} free GPU slot(s) of {n_gpus} in {slots_dir}")
        time.sleep(poll)


def busy_slots(slots_dir: str | os.PathLike, n_gpus: int) -> list[int]:
    """Indices of the slots some live process holds right now."""
    busy = []
    for index in range(n_gpus):
        path = Path(slots_dir) / f"gpu-{index}.lock"
        fd = try_lock(path) if path.exists() else -1
        if fd is None:
            busy.append(index)
        elif fd >= 0:
            os.close(fd)
    return busy


def files_newer_than(root: Path, marker: Path, skip: tuple[str, ...] = (".snakemake",)) -> list[str]:
    """Paths (relative to ``root``) of the files modified after ``marker``, top-level ``skip`` folders left out.

    The inputs staged into a job's folder keep their old modification
    times, so what is newer than the marker touched at staging is exactly
    what the job wrote: its outputs, log and benchmark.
    """
    since = marker.stat().st_mtime
    found = []
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = Path(folder, name)
            if path.stat().st_mtime > since:
                found.append(str(path.relative_to(root)))
    return sorted(found)


def run_job(job_dir: str | os.PathLike, command: list[str], slots_dir: str, n_gpus: int, gpus: int,
            host: str, collect: str | None = None) -> int:
    """Run ``command`` in ``job_dir`` holding ``gpus`` GPU slots; record start and exit code.

    ``alive.lock`` is taken before anything else and inherited by the job,
    so "lock free and no exit code" means the job died without finishing.
    With ``collect`` (the job's working folder), the files the job wrote
    there are listed in ``produced.txt`` for the status command to fetch.
    """
    job_dir = Path(job_dir)
    alive = try_lock(job_dir / ALIVE_LOCK)
    if alive is None:
        raise RuntimeError(f"{job_dir} is already running")
    (job_dir / PGID).write_text(str(os.getpgid(0)))
    started = {"pid": os.getpid(), "pgid": os.getpgid(0), "time": time.time(), "host": host,
               "hostname": socket.gethostname(), "gpus": None}
    write_json(job_dir / STARTED, started, indent=None)
    env = {**os.environ, "KNOWLEDGE_MAP_HOST": host}
    slots: dict[int, int] = {}
    if gpus > 0:
        try:
            slots = acquire_slots(slots_dir, n_gpus, gpus)
        except UnusableLock as error:
            print(f"knowledge-map gpu_slots: {error}", file=sys.stderr)
            write_json(job_dir / EXITCODE, {"returncode": 1, "time": time.time(), "error": str(error)}, indent=None)
            return 1
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in sorted(slots))
        record = json.loads((job_dir / STARTED).read_text())
        write_json(job_dir / STARTED, {**record, "gpus": sorted(slots), "gpu_time": time.time()}, indent=None)
    # Checked after PGID is written: a cancel either sees the PGID and kills us, or we see its marker.
    if (job_dir / CANCELLED).exists():
        return 130
    process = subprocess.run(command, env=env, pass_fds=(alive, *slots.values()))
    if collect is not None:
        produced = files_newer_than(Path(collect), job_dir / "staged")
        (job_dir / PRODUCED).write_text("".join(f"{path}\n" for path in produced))
    write_json(job_dir / EXITCODE, {"returncode": process.returncode, "time": time.time()}, indent=None)
    return process.returncode


def main(argv: list[str] | None = None) -> int:
    """``python -m knowledge_map.cluster.gpu_slots --job-dir J --slots-dir D --n-gpus N --gpus G --host H -- CMD``"""
    parser = argparse.ArgumentParser(prog="python -m knowledge_map.cluster.gpu_slots", description=main.__doc__)
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--slots-dir", required=True)
    parser.add_argument("--n-gpus", type=int, required=True)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--host", default=socket.gethostname())
    parser.add_argument("--collect", help="the job's working folder, to list the files it wrote")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return run_job(args.job_dir, command, args.slots_dir, args.n_gpus, args.gpus, args.host, args.collect)


if __name__ == "__main__":
    sys.exit(main())
