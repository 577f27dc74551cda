"""The slurm profile against a real one-node SLURM (munged, slurmctld, slurmd) with fake GPUs."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from conftest import CPU_ON_FAKE_GPUS, MODEL_SLUG, small_config
from daemons import REPO, embeddings, snakemake_command, start_slurm, stop_slurm

pytestmark = [pytest.mark.slurm, pytest.mark.e2e,
              pytest.mark.skipif(not shutil.which("slurmctld"), reason="needs slurm-wlm and munge")]
TARGET = f"results/{MODEL_SLUG}/embeddings.h5"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    daemons, env = start_slurm(tmp_path_factory.mktemp("slurm"))
    yield env
    stop_slurm(daemons, env)


def test_slurm_profile_runs_every_embed_job_as_a_slurm_job_with_a_gpu(tmp_path, slurm, small_corpus, workflow_run):
    """Each shard is a SLURM job in the gpu partition with CUDA_VISIBLE_DEVICES set; results equal a local run."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(small_config(small_corpus, model=CPU_ON_FAKE_GPUS)))
    # No accounting database here: squeue for status (finished jobs stay visible MinJobAge = 300 s), no account.
    command = snakemake_command(
        workdir, TARGET, "--profile", str(REPO / "profiles" / "slurm"), "-j4", "--slurm-status-command", "squeue",
        "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2", configfile=workdir / "test-config.yaml")
    env = {**slurm, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    slurm_logs = "".join(p.read_text()[-1500:] for p in (workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert result.returncode == 0, output[-3000:] + slurm_logs

    submitted = {a or b for a, b in re.findall(r"SLURM jobid (\d+)|external jobid '(\d+)'", output)}
    seen = {}
    for shard in range(3):
        log = (workdir / f"results/{MODEL_SLUG}/logs/embed/shard-{shard:04d}.log").read_text()
        match = re.search(r"placement host=\S+ slurm_job=(\d+) CUDA_VISIBLE_DEVICES=(\d+)", log)
        assert match, log[-2000:]
        assert match[1] in submitted
        seen[shard] = (match[1], match[2])
    assert len({job for job, _ in seen.values()}) == 3
    print("embed shards -> (SLURM job id, CUDA_VISIBLE_DEVICES):", seen)

    local = workflow_run / "results" / MODEL_SLUG
    for shard in range(3):
        name = f"shards/shard-{shard:04d}.h5"
        assert np.array_equal(embeddings(workdir / "results" / MODEL_SLUG / name), embeddings(local / name))
    assert np.array_equal(embeddings(workdir / TARGET), embeddings(local / "embeddings.h5"))
