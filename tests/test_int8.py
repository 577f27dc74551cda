"""The int8 engine: calibrated on the corpus, judged by neighbours, cached once, falling back to float32."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest
from conftest import spread_articles

from knowledge_map.backends import OpenVINOEncoder
from knowledge_map.corpus import load_corpus, read_corpus, write_corpus
from knowledge_map.embed import embed_shard, embed_texts
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.identity import model_sha256
from knowledge_map.merge import merge_shards
from knowledge_map.models import cpu_has_int8_dot, load_model, resolve_cpu_precision
from knowledge_map.quantize import Int8Plan, Int8Settings, neighbour_overlap, sample_rows


@pytest.fixture(scope="module")
def model():
    return load_model("all-MiniLM-L6-v2", "cpu", "float32", 128)


@pytest.fixture(scope="module")
def articles():
    """120 real articles spread over the corpus, every topic."""
    return spread_articles(120)


def plan(articles, min_overlap=0.8):
    return Int8Plan(Int8Settings(40, 80, min_overlap), articles[:40], articles[40:])


def test_calibration_and_guard_rows_are_disjoint_fixed_and_fit_small_corpora():
    calibration, guard = sample_rows(10_000, 300, 500)
    assert len(calibration) == 300 and len(guard) == 500 and not set(calibration) & set(guard)
    again = sample_rows(10_000, 300, 500)
    assert calibration.tolist() == again[0].tolist() and guard.tolist() == again[1].tolist()
    small_calibration, small_guard = sample_rows(50, 300, 500)
    assert len(small_guard) == 25 and len(small_calibration) == 25
    assert sorted([*small_calibration, *small_guard]) == list(range(50))


def test_neighbour_overlap_counts_kept_neighbours():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(60, 8))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert neighbour_overlap(points, points) == 1.0
    # Scrambling which vector belongs to which row keeps almost no neighbour.
    assert neighbour_overlap(points, points[rng.permutation(60)]) < 0.4
    # A small perturbation keeps most of them.
    noisy = points + rng.normal(scale=0.05, size=points.shape)
    assert 0.6 < neighbour_overlap(points, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)) < 1.0


def test_auto_precision_follows_the_cpu_and_the_engine(tmp_path):
    assert resolve_cpu_precision("auto", "openvino", native_bf16=True, int8_dot=True) == "bfloat16"
    assert resolve_cpu_precision("auto", "openvino", native_bf16=False, int8_dot=True) == "int8"
    assert resolve_cpu_precision("auto", "torch", native_bf16=False, int8_dot=True) == "float32"
    assert resolve_cpu_precision("auto", "openvino", native_bf16=False, int8_dot=False) == "float32"
    assert resolve_cpu_precision("int8", "openvino", native_bf16=True) == "int8"
    vnni = tmp_path / "vnni"
    vnni.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert cpu_has_int8_dot(str(vnni)) and not cpu_has_int8_dot(str(plain))


def test_int8_on_the_torch_engine_is_refused(model):
    from knowledge_map.backends import make_encoder

    with pytest.raises(KnowledgeMapError, match="OpenVINO engine only"):
        make_encoder(model, "cpu", "torch", "int8")


@pytest.mark.slow  # quantizes the model
def test_int8_keeps_neighbours_and_is_cached_once(model, articles, tmp_path, caplog):
    sha = model_sha256("all-MiniLM-L6-v2")
    with caplog.at_level(logging.INFO, logger="knowledge_map.backends"):
        first = OpenVINOEncoder(model, "int8", 2, sha, str(tmp_path), plan(articles))
        second = OpenVINOEncoder(model, "int8", 2, sha, str(tmp_path), plan(articles))
    assert sum("quantizing to int8" in r.message for r in caplog.records) == 1
    assert first.describe()["precision"] == "int8" and first.int8["used"]
    guard = first.int8["guard"]
    assert guard["passed"] and guard["texts"] == 80 and guard["neighbour_overlap"] >= 0.8
    assert second.int8 == first.int8
    reference = OpenVINOEncoder(model, "float32", 2, sha, str(tmp_path))
    int8 = embed_texts(model, articles, 16, encoder=first)
    assert int8.tobytes() == embed_texts(model, articles, 16, encoder=second).tobytes()
    float32 = embed_texts(model, articles, 16, encoder=reference)
    assert not np.array_equal(int8, float32)
    assert neighbour_overlap(float32, int8) >= 0.8
    assert (int8 * float32).sum(axis=1).min() > 0.95

    # A cache entry made from other texts is never used for these.
    entry = next(p for p in tmp_path.iterdir() if p.name.startswith("int8-"))
    identity = json.loads((entry / "identity.json").read_text())
    identity["calibration_sha256"] = "0" * 64
    (entry / "identity.json").write_text(json.dumps(identity))
    with pytest.raises(KnowledgeMapError, match="not made from this model and corpus sample"):
        OpenVINOEncoder(model, "int8", 2, sha, str(tmp_path), plan(articles))


@pytest.mark.slow  # quantizes the model
def test_a_failed_guard_falls_back_to_float32_with_one_warning(model, articles, tmp_path, caplog):
    """The threshold is applied on use: a stricter one reuses the cached model and falls back."""
    sha = model_sha256("all-MiniLM-L6-v2")
    passing = OpenVINOEncoder(model, "int8", 2, sha, str(tmp_path), plan(articles))
    assert passing.int8["used"]
    with caplog.at_level(logging.INFO):
        encoder = OpenVINOEncoder(model, "int8", 2, sha, str(tmp_path), plan(articles, min_overlap=1.0))
    assert not any("quantizing to int8" in r.getMessage() for r in caplog.records)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "int8 guard failed" in warnings[0] and "computing in float32" in warnings[0]
    assert encoder.describe()["precision"] == "float32"
    assert not encoder.int8["used"] and not encoder.int8["guard"]["passed"]
    assert encoder.int8["guard"]["neighbour_overlap"] == passing.int8["guard"]["neighbour_overlap"]
    reference = OpenVINOEncoder(model, "float32", 2, sha, str(tmp_path))
    assert embed_texts(model, articles[:16], 16, encoder=encoder).tobytes() == \
        embed_texts(model, articles[:16], 16, encoder=reference).tobytes()


@pytest.mark.slow  # quantizes the model
def test_int8_shards_record_their_guard_and_never_merge_with_float32(tmp_path, caplog):
    corpus = tmp_path / "corpus.parquet"
    write_corpus(load_corpus("vital-articles", limit=96), corpus)
    cache = str(tmp_path / "cache")
    settings = {"calibration_texts": 32, "guard_texts": 48, "min_overlap": 0.8}
    common = dict(model_name="all-MiniLM-L6-v2", max_seq_length=128, batch_size=16, device="cpu",
                  backend="openvino", cache_dir=cache, int8=settings)
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        shard0 = embed_shard(str(corpus), 0, 2, str(tmp_path / "shard-0000.h5"), cpu_precision="int8", **common)
        shard1 = embed_shard(str(corpus), 1, 2, str(tmp_path / "shard-0001.h5"), cpu_precision="int8", **common)
    # The second shard starts the int8 engine the first one built and judged from its record.
    assert sum("restarted the engine" in r.getMessage() for r in caplog.records) == 1
    assert shard0["precision"] == shard1["precision"] == "int8"
    assert shard0["quantization"] == shard1["quantization"] and len(shard0["quantization"]) == 20
    guard = json.loads(shard0["int8_guard"])
    assert guard["passed"] and guard["texts"] == 48 and 0.8 <= guard["neighbour_overlap"] <= 1.0
    with h5py.File(tmp_path / "shard-0001.h5") as h5:
        assert h5.attrs["quantization"] == shard0["quantization"]
        assert json.loads(h5.attrs["int8_guard"]) == guard

    table = read_corpus(corpus, columns=("id", "title"))
    ids, titles = table.column("id").to_pylist(), table.column("title").to_pylist()
    merge_shards([str(tmp_path / "shard-0000.h5"), str(tmp_path / "shard-0001.h5")], str(tmp_path / "int8.h5"),
                 ids, titles, "all-MiniLM-L6-v2")
    embed_shard(str(corpus), 1, 2, str(tmp_path / "shard-f32.h5"), cpu_precision="float32", **common)
    with pytest.raises(KnowledgeMapError, match="made differently"):
        merge_shards([str(tmp_path / "shard-0000.h5"), str(tmp_path / "shard-f32.h5")], str(tmp_path / "mixed.h5"),
                     ids, titles, "all-MiniLM-L6-v2")
