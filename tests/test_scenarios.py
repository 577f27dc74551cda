"""The test scenarios (``.test/<name>/config.yaml``): valid configs, their files as described, and each plans."""

from __future__ import annotations

import json
import pickle
import subprocess

import pytest
import yaml
from conftest import REPO, SCENARIOS, WIKIPEDIA_ATTRIBUTION, scenario_config, small_corpus_records
from daemons import repo_env, snakemake_command

from knowledge_map.config import validate_config
from knowledge_map.corpus import load_corpus
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.questions import load_questions
from knowledge_map.responses import read_responses

NAMES = sorted(path.parent.name for path in SCENARIOS.glob("*/config.yaml"))


def test_the_scenarios_are_the_documented_ones():
    """Each scenario folder is described in config/README.md."""
    assert NAMES == ["pickle", "questions", "small-file"]
    readme = (REPO / "config" / "README.md").read_text()
    for name in NAMES:
        assert f".test/{name}/" in readme


@pytest.mark.parametrize("name", NAMES)
def test_scenario_config_is_valid_and_names_files_that_exist(name):
    """The config passes the schema as written, and every file it names is in the repo."""
    config = validate_config(yaml.safe_load((SCENARIOS / name / "config.yaml").read_text()))
    for path in (config["corpus"]["path"], config["questions"], config["responses"]):
        assert path is None or (REPO / path).is_file(), path
    assert config["corpus"]["attribution"] == WIKIPEDIA_ATTRIBUTION


def test_small_file_corpus_is_the_slice_conftest_builds():
    """The committed JSONL is exactly :func:`conftest.small_corpus_records` (rebuild it from there if this fails)."""
    lines = (SCENARIOS / "small-file" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == small_corpus_records()


def test_pickle_corpus_loads_only_when_allowed():
    """The seed's pickle format: read with allow_pickle, refused before it is opened without."""
    path = scenario_config("pickle")["corpus"]["path"]
    with open(path, "rb") as handle:
        records = pickle.load(handle)  # noqa: S301 - the repo's own test file
    table = load_corpus("file", path, allow_pickle=True)
    assert table.column("id").to_pylist() == [r["id"] for r in records] and table.num_rows == 24
    with pytest.raises(KnowledgeMapError, match="allow_pickle: true"):
        load_corpus("file", path)


def test_questions_have_ids_the_responses_use():
    """Questions named q01..q12, whose source articles are in the slice; every response names one of them."""
    config = scenario_config("questions")
    questions = load_questions(config["questions"])
    assert [q["id"] for q in questions] == [f"q{i:02d}" for i in range(1, 13)]
    titles = {r["title"] for r in small_corpus_records()}
    assert all(q["source_article"] in titles for q in questions)
    read_responses(config["responses"], questions)  # raises on a response naming no question


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_scenario_plans(name, tmp_path):
    """``snakemake -n --configfile .test/<name>/config.yaml``, as .ci/run runs it from the repo root.

    The scenario's paths are relative to the working directory, so the test's
    working directory gets a ``.test`` link to the repo's.
    """
    (tmp_path / ".test").symlink_to(SCENARIOS)
    command = snakemake_command(tmp_path, "-n", "-q", configfile=SCENARIOS / name / "config.yaml")
    result = subprocess.run(command, env=repo_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
