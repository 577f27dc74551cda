"""Same inputs and config, separate directories -> byte-identical matrix and map; provenance recorded."""

from __future__ import annotations

import hashlib
import json

import h5py
import pytest
from conftest import MODEL_SLUG, run_snakemake, small_config

pytestmark = pytest.mark.e2e


def dataset_bytes(path, name):
    with h5py.File(path) as h5:
        return h5[name][()].tobytes()


def test_two_runs_give_identical_embeddings_and_coordinates(workflow_run, tmp_path, small_corpus):
    second = tmp_path / "second"
    run_snakemake(second, small_config(small_corpus), f"results/{MODEL_SLUG}/map/coords.h5")
    for relative, name in (("embeddings.h5", "embeddings"), ("map/coords.h5", "raw"), ("map/coords.h5", "xy")):
        first_bytes = dataset_bytes(workflow_run / f"results/{MODEL_SLUG}/{relative}", name)
        assert first_bytes == dataset_bytes(second / f"results/{MODEL_SLUG}/{relative}", name), relative
    assert (workflow_run / "results/corpus.parquet").read_bytes() == (second / "results/corpus.parquet").read_bytes()


def test_provenance_records_what_made_the_map(workflow_run, small_corpus):
    record = json.loads((workflow_run / f"results/{MODEL_SLUG}/provenance.json").read_text())
    assert record["corpus"]["input_sha256"] == hashlib.sha256(small_corpus.read_bytes()).hexdigest()
    assert record["model"]["model"] == "all-MiniLM-L6-v2" and len(record["model"]["weights_sha256"]) == 64
    assert record["model"]["device"] == "cpu"
    (software,) = record["shard_software"]  # one host made all three shards
    assert software["shards"] == [0, 1, 2] and software["device"] == "cpu" and software["versions"]["torch"]
    for package in ("python", "torch", "sentence-transformers", "umap-learn", "numpy", "h5py", "snakemake"):
        assert record["versions"][package] and record["versions"][package] != "not installed"
    assert record["config"]["shards"] == 3 and len(record["config_sha256"]) == 64
    for name in ("embeddings", "coords", "cell_labels", "questions", "metrics", "shard-0000", "shard-0002"):
        artifact = record["artifacts"][name]
        digest = hashlib.sha256((workflow_run / artifact["path"]).read_bytes()).hexdigest()
        assert digest == artifact["sha256"], name


def test_report_is_self_contained(workflow_run, small_corpus):
    run_snakemake(workflow_run, small_config(small_corpus), "--report", "report.html")
    html = (workflow_run / "report.html").read_text(errors="replace")
    assert "map.png" in html and "metrics.json" in html and "provenance.json" in html
    assert (workflow_run / "report.html").stat().st_size > 100_000
