"""Partial re-runs: only missing or interrupted shards recompute; the rerun triggers are what the README says."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import MODEL_SLUG
from daemons import REPO, fingerprints, repo_env, snakemake_command, wait_for

pytestmark = pytest.mark.e2e
SHARDS = f"results/{MODEL_SLUG}/shards"
MERGED = f"results/{MODEL_SLUG}/embeddings.h5"


@pytest.fixture
def finished_copy(tmp_path, workflow_run) -> Path:
    """A copy of the complete local run (results and Snakemake's metadata, mtimes kept)."""
    workdir = tmp_path / "run"
    shutil.copytree(workflow_run, workdir, symlinks=True)
    return workdir


def local(workdir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    command = snakemake_command(workdir, *args, "--profile", str(REPO / "profiles/local"), "-c2",
                                configfile=workdir / "test-config.yaml")
    return subprocess.run(command, env=kwargs.pop("env", repo_env()), capture_output=True, text=True, timeout=900,
                          **kwargs)


def planned(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def planned_shards(text: str) -> list[str]:
    """Shard files the plan (or run) in ``text`` embeds: the outputs of its ``rule embed_shard`` jobs."""
    return re.findall(r"rule embed_shard:\n(?:\s+\w+: .*\n)*?\s+output: \S+/(shard-\d+\.h5)", text)


def test_deleted_and_killed_shards_are_the_only_ones_recomputed(finished_copy):
    """Delete shard 0 and SIGKILL the whole run while it redoes shard 1: the re-run redoes just those two."""
    workdir = finished_copy
    shards = workdir / SHARDS
    untouched = fingerprints(shards)["shard-0002.h5"]
    # What a failed run leaves: some shards missing, so the merge (and all after it) never ran.
    (shards / "shard-0000.h5").unlink()
    (shards / "shard-0001.h5").unlink()
    (workdir / MERGED).unlink()
    # First run: rebuild shard 1 alone, killed (with Snakemake itself, like a lost node) mid-shard.
    log = workdir / f"results/{MODEL_SLUG}/logs/embed/shard-0001.log"
    log.unlink()
    command = snakemake_command(workdir, f"{SHARDS}/shard-0001.h5", "--profile", str(REPO / "profiles/local"),
                                "-c2", configfile=workdir / "test-config.yaml")
    run = subprocess.Popen(command, env=repo_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: log.exists() and "placement" in log.read_text(), 240, "shard 1 to start embedding")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert not (shards / "shard-0001.h5").exists()
    assert any((workdir / ".snakemake" / "incomplete").iterdir()), "Snakemake left no incomplete marker"

    dry = local(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]
    for downstream in ("merge_shards", "umap_map", "place_questions", "cell_labels", "map_metrics", "site_data"):
        assert downstream in planned(dry)
    # Exactly the two missing shards are planned (shard 2 is only named as the merge's input).
    assert sorted(planned_shards(planned(dry))) == ["shard-0000.h5", "shard-0001.h5"], planned(dry)[-4000:]

    time.sleep(1.1)  # so a rewrite of shard 2 would show in its mtime
    # The killed Snakemake left its lock; a user is told to --unlock (a dry run ignores the lock).
    unlock = local(workdir, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    result = local(workdir, MERGED)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    after = fingerprints(shards)
    assert after["shard-0002.h5"] == untouched
    assert set(after) == {"shard-0000.h5", "shard-0001.h5", "shard-0002.h5"}
    assert sorted(planned_shards(result.stdout + result.stderr)) == ["shard-0000.h5", "shard-0001.h5"]


def copy_source(destination: Path) -> Path:
    """The workflow's tracked files, modification times kept, so a run there is 'the same code'."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).exists():
            shutil.copy2(REPO / name, target)
    return destination


def test_rerun_triggers(tmp_path, finished_copy):
    """A touched input file or an unrelated script or docstring edit re-embeds nothing; an embedding-code change
    re-embeds every shard."""
    source = copy_source(tmp_path / "src")
    env = {**os.environ, "PYTHONPATH": str(source)}

    def dry_run() -> str:
        command = snakemake_command(finished_copy, "-n", "--profile", str(source / "profiles/local"),
                                    configfile=finished_copy / "test-config.yaml", snakefile=source / "Snakefile")
        # cwd as a user's (the repo root): Python imports knowledge_map from there first.
        result = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout + result.stderr

    assert "Nothing to be done" in dry_run()
    # The user's files count by content: touched (a git checkout, the same file downloaded again), nothing reruns.
    config = yaml.safe_load((finished_copy / "test-config.yaml").read_text())
    for path in (config["corpus"]["path"], config.get("questions"), config.get("responses")):
        if path:
            os.utime(path)
    assert "Nothing to be done" in dry_run()
    umap_script = source / "scripts" / "umap_map.py"
    umap_script.write_text(umap_script.read_text() + "\nUNRELATED_EDIT = True\n")
    out = dry_run()
    assert "umap_map" in out and "embed_shard" not in out
    embed = source / "knowledge_map" / "embed.py"
    text = embed.read_text()
    embed.write_text(text.replace('"""Rows scaled to unit length', '"""Rows scaled to length one'))
    assert "embed_shard" not in dry_run()
    embed.write_text(text.replace("return matrix / np.where(norms == 0, 1, norms)",
                                  "return matrix / np.where(norms == 0, 1.0, norms)"))
    out = dry_run()
    assert "embed_shard        3" in out or out.count("rule embed_shard:") == 3, out[-3000:]
    # The reason Snakemake gives: the embedding-code digest, a param of embed_shard, changed.
    assert re.search(r"[Pp]arams have changed since last execution", out), out[-3000:]
