"""The whole workflow, run for real by Snakemake on a small corpus (3 shards)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import CANARY, MODEL_SLUG, PWNED, run_snakemake, small_config

pytestmark = pytest.mark.e2e


def test_one_shard_file_per_shard_with_its_rows(workflow_run):
    corpus = pq.read_table(workflow_run / "results/corpus.parquet")
    n = corpus.num_rows
    seen = []
    for shard in range(3):
        with h5py.File(workflow_run / f"results/{MODEL_SLUG}/shards/shard-{shard:04d}.h5") as h5:
            rows = h5["rows"][()]
            assert rows.tolist() == list(range(shard * n // 3, (shard + 1) * n // 3))
            assert h5["embeddings"].shape == (len(rows), 384)
            assert h5["embeddings"].dtype == np.float32
            assert h5.attrs["model"] == "all-MiniLM-L6-v2"
            assert h5.attrs["dim"] == 384
            assert h5.attrs["device"] == "cpu"
            assert "torch" in json.loads(h5.attrs["versions"])
            norms = np.linalg.norm(h5["embeddings"][()], axis=1)
            np.testing.assert_allclose(norms, 1.0, atol=1e-5)
            seen.extend(rows.tolist())
    assert seen == list(range(n))


def test_merged_matrix_is_in_corpus_row_order(workflow_run):
    corpus = pq.read_table(workflow_run / "results/corpus.parquet")
    with h5py.File(workflow_run / f"results/{MODEL_SLUG}/embeddings.h5") as h5:
        assert h5["embeddings"].shape == (corpus.num_rows, 384)
        assert h5["ids"].asstr()[()].tolist() == corpus.column("id").to_pylist()
        assert h5["titles"].asstr()[()].tolist() == corpus.column("title").to_pylist()
        merged = h5["embeddings"][()]
    with h5py.File(workflow_run / f"results/{MODEL_SLUG}/shards/shard-0001.h5") as h5:
        np.testing.assert_array_equal(merged[h5["rows"][()]], h5["embeddings"][()])


def test_coordinates_are_finite_and_normalised(workflow_run):
    with h5py.File(workflow_run / f"results/{MODEL_SLUG}/map/coords.h5") as h5:
        xy, raw = h5["xy"][()], h5["raw"][()]
        scale, ox, oy = h5.attrs["scale"], h5.attrs["offset_x"], h5.attrs["offset_y"]
    assert np.isfinite(xy).all() and np.isfinite(raw).all()
    assert xy.min() >= 0 and xy.max() <= 1
    assert math.isclose(max(xy[:, 0].max() - xy[:, 0].min(), xy[:, 1].max() - xy[:, 1].min()), 1, rel_tol=1e-5)
    np.testing.assert_allclose((raw - [ox, oy]) / scale, xy, atol=1e-5)
    assert (workflow_run / f"results/{MODEL_SLUG}/map/reducer.pkl").stat().st_size > 0


def test_every_question_is_placed_next_to_its_article(workflow_run):
    placed = json.loads((workflow_run / f"results/{MODEL_SLUG}/map/questions.json").read_text())
    assert len(placed) == 60
    for question in placed:
        assert 0 <= question["x"] <= 1 and 0 <= question["y"] <= 1
        assert question["source_row"] is not None
    # The small corpus holds every source article: most must be among the 10 nearest on the map.
    assert np.mean([q["rank_map"] <= 10 for q in placed]) >= 0.5


def test_every_label_level_references_real_articles(workflow_run):
    corpus = pq.read_table(workflow_run / "results/corpus.parquet")
    ids = corpus.column("id").to_pylist()
    labels = json.loads((workflow_run / f"results/{MODEL_SLUG}/map/cell_labels.json").read_text())
    assert [level["n"] for level in labels["levels"]] == [3, 6]
    for level in labels["levels"]:
        n = level["n"]
        assert len(level["cells"]) == n * n
        assert sum(cell["article_count"] for cell in level["cells"]) == corpus.num_rows
        for cell in level["cells"]:
            assert cell["center_x"] == pytest.approx((cell["gx"] + 0.5) / n)
            assert cell["center_y"] == pytest.approx((cell["gy"] + 0.5) / n)
            if cell["article_count"]:
                assert cell["label"] and len(cell["label"].split()) <= 4
                assert 0 <= cell["x"] <= 1 and 0 <= cell["y"] <= 1
                assert cell["keywords"]
                for article in cell["top_articles"]:
                    assert ids[article["row"]] == article["id"]
            else:
                assert cell["label"] is None and cell["top_articles"] == []


def test_metrics_are_complete(workflow_run):
    metrics = json.loads((workflow_run / f"results/{MODEL_SLUG}/map/metrics.json").read_text())
    for key in (
        "trustworthiness@10",
        "topic_knn10_accuracy_embedding",
        "topic_knn10_accuracy_map",
        "question_hit@1_embedding",
        "question_hit@1_map",
        "question_hit@10_embedding",
        "question_hit@10_map",
    ):
        assert isinstance(metrics[key], float) and 0 <= metrics[key] <= 1, key
    assert metrics["n_questions"] == metrics["n_questions_with_source"] == 60
    assert metrics["trustworthiness@10"] > 0.8
    # Placement keeps different questions apart, and the lists' cost against the full estimate is recorded.
    assert metrics["question_distinct_positions"] == 60
    assert -1 <= metrics["question_pairs_spearman_map_vs_embedding"] <= 1
    assert metrics["knowledge_sparse_vs_full"]["overall"]["mean_abs"] < 0.05
    # What computed the matrix; an int8 run carries its guard's figures (CPUs with VNNI and no bf16).
    engine = metrics["engine"]
    assert engine["backend"] == "openvino" and engine["precision"] in ("float32", "bfloat16", "int8")
    assert (engine["precision"] == "int8") == (engine["quantization"] is not None)
    assert engine["compiled"] is None  # compiling is CUDA-only
    if engine["int8_guard"] is not None:
        assert set(engine["int8_guard"]) >= {"neighbour_overlap", "min_overlap", "passed", "texts"}
        assert engine["int8_guard"]["passed"] == (engine["precision"] == "int8")
    assert sorted(metrics["labels"], key=int) == ["3", "6"]
    for level in metrics["labels"].values():
        for side in ("labels", "keywords_top3"):
            assert 0 <= level[side]["accuracy"] <= 1 and -1 <= level[side]["mean_similarity"] <= 1
        assert level["max_words"] <= 4 and 0 <= level["share_titles"] <= 1


def test_past_answers_calibrate_the_questions_and_validate_the_map(workflow_run, small_responses):
    """responses: -> difficulty per question in the site, and predictions.csv + summary.json in validation/."""
    calibration = json.loads((workflow_run / "results/calibration.json").read_text())
    assert calibration["source"] == str(small_responses)
    asked = [q for q in calibration["questions"] if q["answers"]]
    assert len(calibration["questions"]) == 60 and len(asked) == 20 and all(q["answers"] == 8 for q in asked)
    rate = {q["id"]: q["right"] / q["answers"] for q in asked}
    difficulty = {q["id"]: q["difficulty"] for q in asked}
    easiest, hardest = max(rate, key=rate.get), min(rate, key=rate.get)
    assert difficulty[easiest] < difficulty[hardest]
    site_questions = json.loads((workflow_run / f"site/data/{MODEL_SLUG}/questions.json").read_text())
    assert [q["difficulty"] for q in site_questions] == [q["difficulty"] for q in calibration["questions"]]
    manifest = json.loads((workflow_run / f"site/data/{MODEL_SLUG}/manifest.json").read_text())
    assert manifest["heatmap"]["calibrated"] is True
    assert manifest["heatmap"]["mean_difficulty"] == calibration["mean_difficulty"]

    validation = workflow_run / f"results/{MODEL_SLUG}/validation"
    with open(validation / "predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["learner", "session", "question", "correct", "estimate", "estimate_calibrated", "page",
                             "page_calibrated", "page_question"]
    assert len(rows) == 8 * 2 * 10
    assert {r["session"] for r in rows} == {"lecture-1", "lecture-2"}
    assert all(0 < float(r[key]) < 1 for r in rows
               for key in ("estimate", "estimate_calibrated", "page", "page_calibrated", "page_question"))
    summary = json.loads((validation / "summary.json").read_text())
    assert summary["permutations"] == 100 and summary["answers"] == 160
    for session in summary["sessions"].values():
        scores = {"estimate", "estimate_calibrated", "own_proportion", "difficulty_only", "ability_difficulty", "page",
                  "page_calibrated", "page_question"}
        assert set(session["auc_pooled"]) == set(session["log_loss"]) == set(session["brier"]) == scores
        assert all(0 < value < 1 for value in session["brier"].values())
        assert 0 < session["permutation"]["estimate"]["p"] <= 1
        assert 0 < session["learners_in_within_learner_auc"] <= session["learners"] == 8


def test_site_data_is_built(workflow_run):
    """site/data/<model>/ holds the map (the model's folder name, as in results/); index.json lists it."""
    data = workflow_run / "site/data" / MODEL_SLUG
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert "CC BY-SA 4.0" in manifest["attribution"]
    for name in manifest["files"].values():
        assert (data / name).is_file()
    n = manifest["count"]
    assert (data / "points.bin").stat().st_size == manifest["points"]["bytes"] == 5 * n
    chunks = sorted((data / "details").glob("*.json"))
    assert len(chunks) == manifest["details"]["chunks"] == -(-n // manifest["details"]["chunk_rows"])
    index = json.loads((workflow_run / "site/data/index.json").read_text())
    assert index["maps"] == [{"id": MODEL_SLUG, "model": "all-MiniLM-L6-v2", "count": n}]


def test_hostile_and_rtl_titles_survive_as_text(workflow_run):
    assert not Path(PWNED).exists() and Path(CANARY).is_dir(), "a title reached a shell"
    corpus = pq.read_table(workflow_run / "results/corpus.parquet")
    titles = corpus.column("title").to_pylist()
    assert "<img src=x onerror=alert(1)>" in titles
    assert "القاهرة — Cairo ‏(RTL)" in titles
    with h5py.File(workflow_run / f"results/{MODEL_SLUG}/embeddings.h5") as h5:
        assert h5["titles"].asstr()[()].tolist() == titles


def test_dry_run_lists_every_target(tmp_path, small_corpus):
    out = run_snakemake(tmp_path, small_config(small_corpus, shards=5), "-n").stdout
    for shard in range(5):
        assert f"results/{MODEL_SLUG}/shards/shard-{shard:04d}.h5" in out
    for target in ("embeddings.h5", "map/coords.h5", "map/cell_labels.json", "map/questions.json", "map/metrics.json"):
        assert f"results/{MODEL_SLUG}/{target}" in out


def test_one_shard_builds_alone(tmp_path, small_corpus):
    run_snakemake(tmp_path, small_config(small_corpus), f"results/{MODEL_SLUG}/shards/shard-0002.h5")
    assert (tmp_path / f"results/{MODEL_SLUG}/shards/shard-0002.h5").is_file()
    assert not (tmp_path / f"results/{MODEL_SLUG}/shards/shard-0000.h5").exists()
    assert not (tmp_path / f"results/{MODEL_SLUG}/embeddings.h5").exists()
