"""Faults during a real workflow run: nothing finished is lost, nothing half-written is kept.

Each test runs Snakemake on the small corpus up to the merged matrix and
then breaks something: a corrupt shard, a full disk (a file-size limit on
the Snakemake process tree), a bad corpus, a bad config.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess

import pytest
from conftest import MODEL_SLUG, run_snakemake, small_config
from daemons import REPO, snakemake_command

pytestmark = pytest.mark.e2e
MERGED = f"results/{MODEL_SLUG}/embeddings.h5"
SHARD = f"results/{MODEL_SLUG}/shards/shard-{{:04d}}.h5"


def shard_state(workdir, shards=3):
    """(mtime_ns, bytes) of every shard file."""
    paths = [workdir / SHARD.format(i) for i in range(shards)]
    return [(p.stat().st_mtime_ns, p.read_bytes()) for p in paths]


def stray_temporaries(workdir):
    return [p for p in (workdir / "results").rglob(".*.tmp-*")]


@pytest.fixture
def merged_run(tmp_path, small_corpus):
    config = small_config(small_corpus)
    run_snakemake(tmp_path, config, MERGED)
    return tmp_path, config


def test_corrupt_shard_stops_the_merge_naming_the_shard_and_the_fix(merged_run):
    workdir, config = merged_run
    shard = workdir / SHARD.format(1)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])
    result = run_snakemake(workdir, config, MERGED, "--forcerun", "merge_shards", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("knowledge-map error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "shard-0001.h5: unreadable or truncated shard file" in lines[0]
    assert f"snakemake --forcerun {SHARD.format(1)}" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (workdir / MERGED).exists()
    # The fix the message names works, and recomputes only that shard.
    before = shard_state(workdir)
    run_snakemake(workdir, config, MERGED, "--forcerun", SHARD.format(1))
    after = shard_state(workdir)
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1][1] != data[: len(data) // 3]


def limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_during_the_merge_keeps_the_shards_and_writes_nothing_half(merged_run):
    workdir, config = merged_run
    merged_size = (workdir / MERGED).stat().st_size
    (workdir / MERGED).unlink()
    before = shard_state(workdir)
    assert max(len(b) for _, b in before) < merged_size // 2
    command = snakemake_command(workdir, MERGED, "-c1", configfile=workdir / "test-config.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                            preexec_fn=limit_file_size(merged_size // 2))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("knowledge-map error:")]
    assert len(lines) == 1 and "out of disk space (or over a file-size limit) while writing" in lines[0], result.stderr[-3000:]
    assert not (workdir / MERGED).exists()
    assert not stray_temporaries(workdir)
    assert shard_state(workdir) == before
    # With space again, the same command finishes and re-embeds nothing.
    run_snakemake(workdir, config, MERGED)
    assert shard_state(workdir) == before and (workdir / MERGED).exists()


def console_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("knowledge-map error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return lines[0]


def test_bad_corpus_is_one_line_on_the_console(tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"id": "a", "title": "A", "text": "x"}\n{"id": "a", "title": "B", "text": "y"}\n')
    result = run_snakemake(tmp_path / "run", small_config(corpus), check=False)
    assert result.returncode != 0
    assert console_error(result).endswith(f"{corpus}: record 1 (id='a'): field 'id' duplicates record 0")


def test_pickle_corpus_without_opt_in_is_refused_before_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    corpus = tmp_path / "wikipedia.pkl"
    # A pickle whose loading would create the marker file.
    corpus.write_bytes(b"cbuiltins\nopen\n(V" + str(marker).encode() + b"\nVw\ntR.")
    result = run_snakemake(tmp_path / "run", small_config(corpus), check=False)
    assert "refusing to unpickle" in console_error(result)
    assert not marker.exists()


def test_bad_config_names_the_key_before_anything_runs(tmp_path, small_corpus):
    result = run_snakemake(tmp_path, small_config(small_corpus, shards=-2), check=False)
    assert result.returncode != 0
    assert "config: shards: -2 is less than the minimum of 1" in result.stderr
    assert not (tmp_path / "results").exists()


def test_warnings_about_the_users_data_reach_the_console(tmp_path, small_corpus):
    """A warning in a rule's log alone is read by nobody: repeated answers left out are one console line."""
    answers = tmp_path / "answers.csv"
    answers.write_text("learner,session,question,correct\nann,1,0,1\nann,1,0,0\nbob,1,1,0\n")
    result = run_snakemake(tmp_path / "run", small_config(small_corpus, responses=str(answers)), "results/calibration.json")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("knowledge-map warning: ")]
    assert warnings == [f"knowledge-map warning: {answers}: 1 repeated answer(s) (same learner, session and question) "
                        "left out, 1 of them different from the first, which is kept; answers given at different times "
                        "belong in different sessions"]
