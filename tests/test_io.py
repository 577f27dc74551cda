"""Atomic writes: a killed writer or an error never leaves a file that looks complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from knowledge_map.io import atomic_path, write_json

WRITER = """
import sys, time
from knowledge_map.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as handle:
        handle.write(b"x" * 1_000_000)
        handle.flush()
        print("half", flush=True)
        time.sleep(60)
"""


def test_sigkill_mid_write_leaves_no_final_file(tmp_path):
    target = tmp_path / "embeddings.h5"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "half"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".embeddings.h5.tmp-")
    # The next write of the same output clears what the killed writer left.
    write_json(target, {"done": True})
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.h5"]


def test_an_error_keeps_the_previous_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "coords.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert target.read_text().strip().replace(" ", "").replace("\n", "") == '{"version":1}'
    assert [p.name for p in tmp_path.iterdir()] == ["coords.json"]


def test_a_cache_folder_a_killed_job_left_is_removed_and_no_live_or_foreign_one(tmp_path):
    """Building a cache entry starts by removing this host's temporary folders whose process is gone (a job
    killed while caching a 2.4 GB model left it all behind); a live job's, or another host's, stay."""
    import hashlib
    import socket

    from knowledge_map.io import temporary_folder

    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    for name in (f".tmp-{host}-{dead}-abc", f".tmp-{host}-{os.getpid()}-live", f".tmp-other_host-{dead}-xyz"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.bin").write_bytes(b"x" * 1000)
    made = temporary_folder(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert f".tmp-{host}-{dead}-abc" not in left
    assert f".tmp-{host}-{os.getpid()}-live" in left and f".tmp-other_host-{dead}-xyz" in left
    assert os.path.basename(made).startswith(f".tmp-{host}-{os.getpid()}-") and os.listdir(made) == []
