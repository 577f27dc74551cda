"""The CUDA engine (knowledge_map.gpu): shape buckets, compiled blocks checked against eager, when to compile.

torch.compile runs on the CPU too (Inductor's C++ backend), so everything
but the speed is tested here on real models: the embedded default and a
miniature of Qwen3-0.6B's architecture with random weights.  The test
marked ``cuda`` runs where a GPU is (docs/gpu.md's tables were measured
on one); CI has none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import spread_articles

from knowledge_map.backends import TorchEncoder, agreement, bucket_length, cosines, pad_features
from knowledge_map.embed import embed_texts, plan_batches
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.gpu import (
    COMPILE_MIN_COSINE,
    COMPILE_PAYS_SECONDS,
    EAGER_PEAK_SHARE,
    CompiledEncoder,
    repeated_blocks,
    resolve_compile,
)
from knowledge_map.models import load_model

REPO = Path(__file__).resolve().parents[1]
#: A 2-layer Qwen3 with small widths: the architecture (RoPE, RMSNorm, SwiGLU, GQA, last-token pooling,
#: left padding) at a size the CPU runs in seconds.
MINI_QWEN3 = {"num_hidden_layers": 2, "hidden_size": 96, "intermediate_size": 192, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 24, "vocab_size": 32000}


@pytest.fixture(scope="module")
def texts():
    """48 real articles of every length."""
    return spread_articles(48)


@pytest.fixture(scope="module")
def mini_qwen3(tmp_path_factory):
    from knowledge_map.devtools.random_model import build_random_qwen3

    return build_random_qwen3(str(tmp_path_factory.mktemp("mini-qwen3")), **MINI_QWEN3)


def test_bucket_length_rounds_up_within_the_cap():
    assert [bucket_length(n, 64) for n in (1, 63, 64, 65, 500)] == [64, 64, 64, 128, 512]
    assert bucket_length(300, 64, cap=300) == 300  # never past max_seq_length
    assert bucket_length(290, 64, cap=300) == 300
    assert bucket_length(0, 1) == 1 and bucket_length(7, 1, cap=256) == 7


def test_bucketed_batches_keep_the_token_budget_on_padded_shapes():
    lengths = np.random.default_rng(0).integers(1, 257, 500)
    batches = plan_batches(lengths, 64, 64 * 256, multiple=64, cap=256)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        padded = bucket_length(int(lengths[batch].max()), 64, 256)
        assert len(batch) * padded <= 64 * 256 and len(batch) <= 64
    # Without a multiple each batch is as large as its own longest text allows, longest texts first.
    plain = plan_batches(lengths, 64, 64 * 256)
    order = np.argsort(-lengths, kind="stable")
    start = 0
    for batch in plain:
        assert batch.tolist() == order[start : start + len(batch)].tolist()
        assert len(batch) == min(64, 64 * 256 // int(lengths[batch[0]]), len(order) - start)
        start += len(batch)


@pytest.mark.slow  # loads two models
@pytest.mark.parametrize("which", ["minilm", "qwen3"])
def test_padding_to_a_bucket_is_what_the_tokenizer_gives_a_longer_batch(which, mini_qwen3):
    """Right padding (BERT) and left padding (Qwen3-Embedding): the padded row equals the tokenizer's own."""
    model = load_model("all-MiniLM-L6-v2" if which == "minilm" else mini_qwen3, "cpu", "float32", 256)
    short, long = "Volcano.", "Jazz is a music genre that originated in New Orleans " * 3
    together = model.preprocess([short, long])
    alone = model.preprocess([short])
    padded = pad_features(alone, together["input_ids"].shape[1], model.tokenizer.padding_side,
                          model.tokenizer.pad_token_id)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in together:
            assert padded[key][0].tolist() == together[key][0].tolist(), key
    assert model.tokenizer.padding_side == ("right" if which == "minilm" else "left")


@pytest.mark.slow
def test_repeated_blocks_are_found_by_shape_in_bert_and_qwen3(mini_qwen3):
    minilm = load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)
    qwen = load_model(mini_qwen3, "cpu", "float32", 256)
    assert len(repeated_blocks(minilm[0].auto_model)) == 6
    assert [type(b).__name__ for b in repeated_blocks(qwen[0].auto_model)] == ["Qwen3DecoderLayer"] * 2
    # Embedding never generates: no key/value cache (it made compile specialise per layer on CUDA).
    assert qwen[0].auto_model.config.use_cache is False


def test_compile_is_decided_by_the_shards_work():
    h100 = "NVIDIA H100 80GB HBM3"
    pays = COMPILE_PAYS_SECONDS * EAGER_PEAK_SHARE * 989.4e12
    assert resolve_compile("auto", "cuda", "torch", 1.01 * pays, h100) is True
    assert resolve_compile("auto", "cuda", "torch", 0.99 * pays, h100) is False
    assert resolve_compile("auto", "cuda", "torch", 1e20, "Some Unknown GPU") is False  # no peak, no guess
    assert resolve_compile("auto", "cpu", "openvino", 1e20) is False
    assert resolve_compile(False, "cuda", "torch", 1e20, h100) is False
    assert resolve_compile(True, "cuda", "torch", 0.0, h100) is True
    with pytest.raises(KnowledgeMapError, match="CUDA with the torch engine only"):
        resolve_compile(True, "cpu", "openvino", 0.0)
    for bad in ("yes", 1, 1.0, 0.0, None):
        with pytest.raises(KnowledgeMapError, match="model.compile must be auto, true or false"):
            resolve_compile(bad, "cuda", "torch", 0.0, h100)


@pytest.mark.slow  # compiles on the CPU (Inductor's C++ backend): ~20 s each
@pytest.mark.parametrize("which", ["minilm", "qwen3"])
def test_compiled_blocks_match_eager_and_compile_once_for_texts_of_every_length(which, mini_qwen3, texts):
    name = "all-MiniLM-L6-v2" if which == "minilm" else mini_qwen3
    compiled_model = load_model(name, "cpu", "float32", 256)
    eager_model = load_model(name, "cpu", "float32", 256)
    encoder = CompiledEncoder(compiled_model)
    record = encoder.record()
    assert record["used"] and record["check_min_cosine"] >= COMPILE_MIN_COSINE
    set_up = record["graphs"]
    # Batches of every length bucket, a one-text batch and texts with no padding at all: no recompiles.
    out = embed_texts(compiled_model, texts, 8, "", encoder=encoder)
    out_one = embed_texts(compiled_model, texts[:1], 8, "", encoder=encoder)
    long = [" ".join(texts)] * 3
    embed_texts(compiled_model, long, 8, "", encoder=encoder)
    assert encoder.record()["graphs"] == set_up <= 2
    reference = embed_texts(eager_model, texts, 8, "", encoder=TorchEncoder(eager_model))
    assert cosines(out, reference).min() >= COMPILE_MIN_COSINE
    np.testing.assert_allclose(out_one[0], out[0], atol=1e-5)
    assert len(repeated_blocks(compiled_model[0].auto_model)) == record["blocks"]


FAILING_COMPILER = """
import json, logging, sys
import numpy as np
import torch._inductor.config as inductor_config
from knowledge_map.backends import TorchEncoder
from knowledge_map.embed import embed_texts
from knowledge_map.gpu import CompiledEncoder
from knowledge_map.models import load_model

logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
inductor_config.cpp.cxx = ("/nonexistent/g++",)
texts = json.loads(sys.argv[1])
model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)
encoder = CompiledEncoder(model)
out = embed_texts(model, texts, 16, "", encoder=encoder)
reference = load_model("all-MiniLM-L6-v2", "cpu", "float32", 256)
expected = embed_texts(reference, texts, 16, "", encoder=TorchEncoder(reference))
print(json.dumps({"record": encoder.record(), "max_diff": float(np.abs(out - expected).max())}))
"""


@pytest.mark.slow
def test_a_compiler_that_fails_leaves_the_shard_eager_with_one_warning(texts, tmp_path):
    """A real fault: Inductor's C++ compiler is missing (fresh process and compile cache, so nothing
    compiled earlier hides it). The encoder warns in one line and computes eagerly."""
    import os

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    done = subprocess.run([sys.executable, "-c", FAILING_COMPILER, json.dumps(texts[:16])], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    warnings = [line for line in done.stderr.splitlines() if "compiled blocks refused" in line]
    assert len(warnings) == 1 and warnings[0].startswith("knowledge_map.gpu WARNING"), done.stderr[-2000:]
    assert result["record"]["used"] is False
    assert result["max_diff"] < 1e-5


@pytest.mark.slow  # the benchmark's CUDA steps, run on the CPU with the miniature: the device script's dry run
def test_the_gpu_benchmark_runs_every_path_and_reports_the_job(tmp_path, mini_qwen3):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "embed.py"), "--cuda-steps-on-cpu", "--device", "cpu",
         "--model", mini_qwen3, "--long", "--max-seq-length", "128", "--texts", "24", "--baseline-texts", "8",
         "--eager-texts", "8", "--repeats", "1", "--batch-size", "8", "--compile", "true", "--out", str(out)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    result = json.loads(out.read_text())
    assert result["mean_tokens"] >= 127  # --long: every text fills max_seq_length
    for path in ("naive", "careful", "eager", "workflow"):
        assert result[path]["texts_per_s"] > 0
    assert result["workflow"]["compiled"]["used"] is True
    assert result["workflow"]["projected_250k_s"] > result["workflow"]["setup_s"]
    assert result["workflow"]["min_cosine_vs_float32"] >= COMPILE_MIN_COSINE


@pytest.mark.slow  # the device script's two diagnostic steps, on the CPU with the miniature
def test_the_gpu_diagnostics_run_and_report(tmp_path, mini_qwen3):
    profile = tmp_path / "profile.json"
    common = ["--device", "cpu", "--model", mini_qwen3, "--texts", "32", "--batch-size", "8"]
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_profile.py"), *common, "--encoder", "compiled",
                    "--max-seq-length", "128", "--profile-batches", "2", "--out", str(profile)],
                   check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(profile.read_text())
    assert result["compiled"]["used"] is True and result["texts_per_s"] > 0
    assert set(result["profile"]) >= {"wall_s", "kernel_s", "by_kind_share", "top_kernels"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_decompose.py"), *common],
                          check=True, capture_output=True, text=True, timeout=600, env={**os.environ, "OUT": str(tmp_path)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "decompose.json").read_text())
    assert result["embed_texts_texts_per_s"] > 0 and result["forward_only_texts_per_s"] > 0
    assert result["tokenising"]["tokenizers_per_batch_s"] > 0 and result["tokenising"]["preprocess_per_batch_s"] > 0


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_minilm_on_cuda_matches_float32(texts):
    """The accuracy guard on real weights: compiled fp16 blocks against float32 (H200: min cosine 1.0)."""
    import torch

    from knowledge_map.embed import l2_normalise

    model = load_model("all-MiniLM-L6-v2", "cuda", "float16", 256)
    reference = load_model("all-MiniLM-L6-v2", "cuda", "float32", 256)
    out = embed_texts(model, texts, 16, "", encoder=CompiledEncoder(model))
    with torch.inference_mode():
        expected = l2_normalise(reference.encode(texts, convert_to_numpy=True))
    assert cosines(out, expected).min() >= 0.999


def test_compiled_outputs_that_are_not_finite_fail_the_check():
    """A NaN row fails the compiled-vs-eager check (Python's min would have skipped it and passed)."""

    eager = np.eye(3)
    assert agreement(eager, eager) == pytest.approx(1.0)
    assert agreement(np.array([[1.0, 0, 0], [0, 1.0, 0], [np.nan, 0, 1.0]]), eager) == 0.0
    assert agreement(np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, np.inf]]), eager) == 0.0
    assert min(1.0, float("nan")) == 1.0  # why: the old check's min kept 1.0
