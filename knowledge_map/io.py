"""Atomic writes, file digests and exclusive locks, one implementation each.

Everything is written to a temporary name in the destination folder and
renamed into place only once closed, so a SIGKILL, a full disk or an
exception leaves either the previous file or nothing: an interrupted job
never leaves a file that looks complete.  Files are hashed with SHA-256,
streamed in 1 MiB blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, concurrent: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    Temporary files left by killed writers are removed first, unless
    ``concurrent`` (several processes may write ``path`` at once: a cache,
    a job record), where another writer's file may still be live.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if not concurrent:
        # Left by a writer that was killed; Snakemake runs one job per output, so none is live.
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            stale.unlink(missing_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def temporary_folder(parent: str | os.PathLike) -> str:
    """A new empty folder in ``parent`` to build a cache entry in, then rename into place.

    Its name records this host (a digest of its name) and process
    (``.tmp-<host>-<pid>-<random>``);
    folders that a killed job of this host left (its process gone) are
    removed first.  A converted Qwen3-0.6B is 2.4 GB: a job killed while
    caching it left that much behind, every time.  Folders of other hosts
    (a cache on a shared file system) are never touched.
    """
    import shutil
    import socket
    import tempfile

    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]  # a name that cannot hold a "-"
    for stale in Path(parent).glob(f".tmp-{host}-*-*"):
        pid = stale.name[len(f".tmp-{host}-"):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(dir=parent, prefix=f".tmp-{host}-{os.getpid()}-")


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` still runs on this host (another user's counts; None: unknown, taken as alive)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has ended: its parent has not collected it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 1, concurrent: bool = False) -> None:
    """Write ``data`` atomically as stable JSON (sorted keys, UTF-8).

    Parameters
    ----------
    indent: int or None (optional, default=1)
        Indentation; None writes one line (files a shell reads line by line).
    concurrent: bool (optional, default=False)
        Several processes may write ``path`` at once (see :func:`atomic_path`).
    """
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)
    with atomic_path(path, concurrent) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in ``path`` (UTF-8)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def hash_file(path: str | os.PathLike, digest: Any = None) -> Any:
    """Feed a file's bytes, streamed in 1 MiB blocks, into ``digest`` (a new SHA-256 when None); return it."""
    digest = hashlib.sha256() if digest is None else digest
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hash_file(path).hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_path: str | os.PathLike, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0644 if absent) for the ``with`` block.

    Jobs side by side take turns: the one that gets the lock first does the
    work, the others then find it done.  The lock belongs to the open file,
    which the kernel closes if the holder dies, so a killed job never leaves
    a lock behind.  Yields whether the lock is held: with ``blocking=False``
    a lock someone else holds yields False at once instead of waiting.
    """
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def write_failure(folder: str | os.PathLike, what: str, error: BaseException):
    """A one-line :class:`KnowledgeMapError` for ``what`` that could not be written under ``folder``, with the free space.

    OpenVINO reports a full disk (or a file-size limit) while saving a
    model as a bare C++ stream error ("basic_ios::clear: iostream error"),
    with no errno to tell it by, so the message gives the disk's free space
    beside the library's words instead of a traceback.
    """
    import shutil

    from knowledge_map.errors import KnowledgeMapError

    try:
        free = f"{shutil.disk_usage(folder).free / 1e9:.1f} GB free there"
    except OSError:
        free = "free space unknown"
    return KnowledgeMapError(f"{folder}: could not write {what} ({type(error).__name__}: {error}; {free}); free space "
                             "(or raise the file-size limit) and re-run: nothing half-written was kept")
