"""Every profile resolves, installs with the README's one-liner, and none leaks into another."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from conftest import MODEL_SLUG, small_config
from daemons import REPO, repo_env, snakemake_command

pytestmark = pytest.mark.e2e  # dry runs and a run of Snakemake
PROFILES = ("local", "mac", "slurm", "tensor")
#: The README's install line, run as written.
INSTALL = ("mkdir -p ~/.config/snakemake && "
           "cp -R profiles/local profiles/mac profiles/slurm profiles/tensor ~/.config/snakemake/")


def test_no_default_workflow_profile():
    """profiles/default would be merged into every run (Snakemake loads it as the workflow profile)."""
    assert not (REPO / "profiles" / "default").exists()


@pytest.mark.parametrize("profile", PROFILES)
def test_dry_run_resolves_every_target(profile, tmp_path, small_corpus):
    """``snakemake -n --profile profiles/<name>`` from the repo root plans every shard and the map."""
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(small_corpus)))
    result = subprocess.run(
        snakemake_command(tmp_path, "-n", "--profile", f"profiles/{profile}", configfile=tmp_path / "c.yaml"),
        cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert f"Using profile profiles/{profile} " in out and out.count("Using profile") == 1
    for shard in range(3):
        assert f"shards/shard-{shard:04d}.h5" in out
    assert "map/coords.h5" in out and "map/cell_labels.json" in out


def test_installed_profiles_work_by_name(tmp_path, small_corpus):
    """After the install one-liner, ``snakemake --profile tensor`` (and the others) work as typed, anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**repo_env(), "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    subprocess.run(["bash", "-c", INSTALL], cwd=REPO, env=env, check=True)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(small_corpus)))
    for profile in PROFILES:
        result = subprocess.run(
            [*snakemake_command(tmp_path, "-n", "-q", "--profile", profile, configfile=tmp_path / "c.yaml")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (profile, result.stderr[-2000:])
        assert f"Using profile {profile} " in result.stdout + result.stderr
    assert (home / ".config/snakemake/tensor/submit").stat().st_mode & 0o111, "submit lost its executable bit"


def test_mac_profile_without_mps_stops_with_a_clear_error(tmp_path, small_corpus):
    """The mac profile asks for MPS; here there is none, so the shard fails with one line, no CPU fallback."""
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(small_config(small_corpus)))
    target = f"results/{MODEL_SLUG}/shards/shard-0000.h5"
    result = subprocess.run(
        [*snakemake_command(tmp_path, target, "-j1", "--profile", "profiles/mac", "--retries", "0",
                            configfile=tmp_path / "c.yaml")],
        cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "knowledge-map error: model.device is 'mps' but this machine has no Apple MPS device" in result.stderr
    assert not (tmp_path / target).exists()
