"""The tensor profile against a real sshd: two host aliases, no shared filesystem.

Two ssh aliases (``tensor01``, ``tensor02``, 2 fake GPUs each) reach one
loopback sshd; each has its own "remote" root, so jobs only see what the
profile staged there and results exist locally only if they came back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CPU_ON_FAKE_GPUS, MODEL_SLUG, small_config
from daemons import (
    REPO,
    embeddings,
    fingerprints,
    repo_env,
    snakemake_command,
    start_sshd,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.ssh, pytest.mark.e2e, pytest.mark.skipif(not shutil.which("sshd"), reason="needs openssh-server")]
HOSTS = ("tensor01", "tensor02")
TARGET = f"results/{MODEL_SLUG}/embeddings.h5"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    daemon, ssh_config = start_sshd(tmp_path_factory.mktemp("sshd"), HOSTS)
    yield ssh_config
    stop(daemon)


@pytest.fixture
def tensor_profile(tmp_path, sshd) -> Path:
    """A copy of profiles/tensor whose hosts.yaml names the two test aliases, as a user would edit it."""
    profile = tmp_path / "profile-tensor"
    shutil.copytree(REPO / "profiles" / "tensor", profile)
    hosts = {"hosts": {}, "python": sys.executable, "shared_fs": False, "ssh_config": str(sshd)}
    for name in HOSTS:
        hosts["hosts"][name] = {"gpus": 2, "root": str(tmp_path / f"remote-{name}"),
                                "slots_dir": str(tmp_path / f"remote-{name}" / "gpu-slots")}
    (profile / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    return profile


def records(workdir: Path) -> list[dict]:
    folder = workdir / ".snakemake" / "knowledge-map-tensor" / "jobs"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def embed_records(workdir: Path) -> list[dict]:
    return [r for r in records(workdir) if r["rule"] == "embed_shard"]


def started(record: dict) -> dict | None:
    path = Path(record["job_dir"]) / "started.json"
    data = json.loads(path.read_text()) if path.exists() else None
    return data if data and data.get("gpus") is not None else None


def run_tensor(workdir: Path, profile: Path, *extra: str) -> subprocess.Popen:
    command = snakemake_command(workdir, TARGET, "--profile", str(profile), "-j4", "--retries", "0",
                                "--seconds-between-status-checks", "1", *extra,
                                configfile=workdir / "test-config.yaml")
    return subprocess.Popen(command, env=repo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_tensor_profile_over_ssh_kill_one_shard_and_rerun_it(tmp_path, tensor_profile, small_corpus, workflow_run):
    """Every embed job goes through ssh with its own GPU; a killed shard fails alone and is the only one redone."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(small_config(small_corpus, model=CPU_ON_FAKE_GPUS)))
    run = run_tensor(workdir, tensor_profile)
    try:
        # Freeze the first embed job that holds a GPU and has started embedding, check it has not written
        # its shard, then SIGKILL its whole process group on the "remote" host (what a lost node does).
        # Wait until all three hold a GPU, so jobs sharing a host do overlap before one is killed.
        def victim():
            assert run.poll() is None, run.communicate()[0][-3000:]
            jobs = embed_records(workdir)
            if len(jobs) < 3 or not all(started(record) for record in jobs):
                return None
            for record in jobs:
                log = Path(record["work"]) / record["logs"][0]
                if log.exists() and "placement" in log.read_text() \
                        and not (Path(record["job_dir"]) / "exitcode").exists():
                    return record
            return None

        killed = wait_for(victim, 240, "an embed job running on a host")
        pgid = int((Path(killed["job_dir"]) / "pgid").read_text())
        os.killpg(pgid, signal.SIGSTOP)
        shard = killed["wildcards"]["shard"]
        assert not (Path(killed["work"]) / f"results/{MODEL_SLUG}/shards/shard-{shard}.h5").exists()
        os.killpg(pgid, signal.SIGKILL)
        killed_at = time.time()  # its GPU slot is free from here on; Snakemake notices at its next status check
        output, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0, output[-3000:]
    shards = workdir / "results" / MODEL_SLUG / "shards"
    expected = {f"shard-{i:04d}.h5" for i in range(3)}
    assert {p.name for p in shards.glob("shard-*.h5")} == expected - {f"shard-{shard}.h5"}, output[-3000:]
    first = embed_records(workdir)
    assert len(first) == 3 and {r["state"] for r in first if r["jobid"] != killed["jobid"]} == {"success"}
    assert [r["state"] for r in first if r["jobid"] == killed["jobid"]] == ["failed"]

    # Every embed job ran through ssh on one of the aliases, with exactly one GPU, seen by the rule too.
    for record in first:
        assert record["host"] in HOSTS
        assert len(record["started"]["gpus"]) == 1
        log = (workdir / record["logs"][0]).read_text()
        gpu = record["started"]["gpus"][0]
        assert f"placement host={record['host']} slurm_job=- CUDA_VISIBLE_DEVICES={gpu}" in log
    # Jobs that overlapped in time on one host held different GPUs, and some did overlap. A job ends when
    # its process does (exit code time; the kill for the killed one), not when a status check sees it.
    def ended(record: dict) -> float:
        exitcode = Path(record["job_dir"]) / "exitcode"
        if exitcode.exists():
            return json.loads(exitcode.read_text())["time"]
        return killed_at if record["jobid"] == killed["jobid"] else record["finished"]

    overlapping = 0
    for a in first:
        for b in first:
            if a["jobid"] < b["jobid"] and a["host"] == b["host"]:
                if a["started"]["gpu_time"] < ended(b) and b["started"]["gpu_time"] < ended(a):
                    overlapping += 1
                    assert a["started"]["gpus"] != b["started"]["gpus"]
    assert overlapping >= 1, [(r["host"], r["started"], r["finished"]) for r in first]
    print("embed jobs:", [(r["wildcards"]["shard"], r["host"], r["started"]["gpus"], r["state"]) for r in first])

    # The re-run recomputes only the killed shard; the others keep their bytes and mtime.
    before = fingerprints(shards)
    rerun = run_tensor(workdir, tensor_profile)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    after = fingerprints(shards)
    assert {name: after[name] for name in before} == before
    new = [r for r in embed_records(workdir) if r["jobid"] not in {f["jobid"] for f in first}]
    assert [r["wildcards"]["shard"] for r in new] == [shard] and new[0]["state"] == "success"
    print("re-run recomputed shard", shard, "on", new[0]["host"], "GPU", new[0]["started"]["gpus"])

    # What came back over ssh equals the local run's embeddings, shard by shard and merged.
    local = workflow_run / "results" / MODEL_SLUG
    for name in expected:
        assert np.array_equal(embeddings(shards / name), embeddings(local / "shards" / name)), name
    assert np.array_equal(embeddings(workdir / TARGET), embeddings(local / "embeddings.h5"))


def test_ctrl_c_cancels_remote_jobs(tmp_path, tensor_profile, small_corpus):
    """SIGINT to Snakemake kills the remote jobs and frees their GPU slots."""
    from knowledge_map.cluster.gpu_slots import busy_slots

    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(small_config(small_corpus, model=CPU_ON_FAKE_GPUS)))
    run = run_tensor(workdir, tensor_profile)
    try:
        def running_jobs():
            assert run.poll() is None, run.communicate()[0][-3000:]
            return [r for r in embed_records(workdir) if started(r)]

        running = wait_for(running_jobs, 240, "a remote embed job")
        interrupted_at = time.time()
        os.killpg(run.pid, signal.SIGINT)
        run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0

    def all_gone():
        for record in running:
            alive = subprocess.run(["flock", "-n", str(Path(record["job_dir"]) / "alive.lock"), "true"])
            if alive.returncode != 0:
                return False
        return True

    wait_for(all_gone, 30, "the cancelled remote jobs to die")
    time.sleep(0.5)
    for record in running:
        exit_file = Path(record["job_dir"]) / "exitcode"
        if exit_file.exists():
            ended = json.loads(exit_file.read_text())
            assert ended["time"] < interrupted_at, f"a cancelled job ran to the end: {record['jobid']} {ended} " \
                f"(interrupted at {interrupted_at})"
    assert any(not (Path(r["job_dir"]) / "exitcode").exists() for r in running), "no job was running at the Ctrl-C"
    for name in HOSTS:
        assert busy_slots(tensor_profile.parent / f"remote-{name}" / "gpu-slots", 2) == []
