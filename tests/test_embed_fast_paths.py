"""Fast embedding paths: accuracy against float32 PyTorch, determinism, settings, caching."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import spread_articles

from knowledge_map import backends
from knowledge_map.backends import OpenVINOEncoder, TorchEncoder, make_encoder
from knowledge_map.embed import embed_texts
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.models import (
    cpu_has_native_bf16,
    load_model,
    resolve_backend,
    resolve_cpu_precision,
    resolve_model_path,
    weights_sha256,
)
from knowledge_map.quantize import Int8Plan, Int8Settings

#: Minimum cosine of a floating-point fast path to the float32 reference (issue 5).
FLOAT_MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def model():
    return load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)


@pytest.fixture(scope="module")
def texts():
    """64 real articles spread over the corpus: short and long, every topic."""
    return spread_articles(64)


@pytest.fixture(scope="module")
def reference(model, texts):
    """What the seed computed: sentence-transformers' own encode, float32."""
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ov-cache"))


@pytest.mark.slow  # OpenVINO conversions and model runs
@pytest.mark.parametrize(
    ("backend", "precision"),
    [("torch", "float32"), ("torch", "bfloat16"), ("openvino", "float32"), ("openvino", "bfloat16")],
)
def test_every_fast_path_matches_the_float32_reference(model, texts, reference, ov_cache, backend, precision):
    encoder = make_encoder(model, "cpu", backend, precision, cache_dir=ov_cache)
    fast = embed_texts(model, texts, batch_size=16, encoder=encoder)
    cosine = (fast * reference).sum(axis=1)
    assert cosine.min() >= FLOAT_MIN_COSINE, f"{backend}/{precision}: min cosine {cosine.min():.6f}"
    assert encoder.describe()["precision"].startswith(precision)


@pytest.mark.slow  # OpenVINO conversions and model runs
def test_default_cpu_path_is_deterministic_and_in_input_order(model, texts, ov_cache):
    backend = resolve_backend("auto", "cpu")
    # On a CPU with VNNI and no bf16 the default is int8, calibrated on the corpus: here, half the texts.
    plan = Int8Plan(Int8Settings(32, 32, 0.0), texts[:32], texts[32:])
    encoder = make_encoder(model, "cpu", backend, resolve_cpu_precision("auto", backend), cache_dir=ov_cache, int8=plan)
    first = embed_texts(model, texts, 16, encoder=encoder)
    assert first.tobytes() == embed_texts(model, texts, 16, encoder=encoder).tobytes()
    reversed_order = embed_texts(model, texts[::-1], 16, encoder=encoder)[::-1]
    np.testing.assert_allclose(reversed_order, first, atol=2e-3)


@pytest.mark.slow  # OpenVINO conversions and model runs
def test_openvino_conversion_is_cached_and_reused(model, texts, tmp_path):
    sha = weights_sha256(resolve_model_path("all-MiniLM-L6-v2"))
    first = OpenVINOEncoder(model, "float32", 2, sha, str(tmp_path))
    entries = [p.name for p in tmp_path.iterdir()]
    assert len(entries) == 1 and (tmp_path / entries[0] / "model.xml").exists()
    second = OpenVINOEncoder(model, "float32", 2, sha, str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == entries
    a = embed_texts(model, texts[:8], 8, encoder=first)
    assert a.tobytes() == embed_texts(model, texts[:8], 8, encoder=second).tobytes()


@pytest.mark.slow  # OpenVINO conversions and model runs
def test_a_conversion_that_disagrees_with_pytorch_is_refused(model, monkeypatch):
    monkeypatch.setattr(backends, "CONVERSION_MIN_COSINE", 1.5)
    with pytest.raises(KnowledgeMapError, match="set model.backend: torch"):
        OpenVINOEncoder(model, "float32", 2)


def test_backend_resolution():
    assert resolve_backend("auto", "cpu") == "openvino"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    with pytest.raises(KnowledgeMapError, match="CPU only"):
        resolve_backend("openvino", "cuda")
    with pytest.raises(KnowledgeMapError, match="model.backend must be one of"):
        resolve_backend("onnx", "cpu")


def test_cpu_precision_follows_native_bf16(tmp_path):
    assert resolve_cpu_precision("auto", native_bf16=True) == "bfloat16"
    assert resolve_cpu_precision("auto", native_bf16=False, int8_dot=False) == "float32"
    assert resolve_cpu_precision("float32", native_bf16=True) == "float32"
    with pytest.raises(KnowledgeMapError, match="cpu_precision must be one of"):
        resolve_cpu_precision("int4")
    with_bf16 = tmp_path / "with"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    without = tmp_path / "without"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_native_bf16(str(with_bf16)) and not cpu_has_native_bf16(str(without))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


def test_torch_encoder_autocasts_only_when_asked(model):
    assert make_encoder(model, "cpu", "torch", "bfloat16").describe()["precision"] == "bfloat16-autocast"
    plain = make_encoder(model, "cpu", "torch", "float32")
    assert isinstance(plain, TorchEncoder) and plain.describe()["precision"] == "float32"


@pytest.mark.e2e
def test_shards_record_the_engine_they_ran_on(workflow_run):
    shards = sorted((workflow_run / "results" / "all-MiniLM-L6-v2" / "shards").glob("shard-*.h5"))
    assert shards
    for shard in shards:
        with h5py.File(shard) as h5:
            assert h5.attrs["backend"] == resolve_backend("auto", "cpu")
            guard = json.loads(h5.attrs["int8_guard"]) if h5.attrs["int8_guard"] else None
            # auto is int8 on a CPU with VNNI and no bf16, unless its guard failed on this corpus.
            expected = resolve_cpu_precision("auto")
            if expected == "int8" and not guard["passed"]:
                expected = "float32"
            assert h5.attrs["precision"] == expected and (guard is not None) == (resolve_cpu_precision("auto") == "int8")
            assert h5.attrs["threads"] >= 1 and h5.attrs["attention"] == "sdpa"
