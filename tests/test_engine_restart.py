"""Restarting a built OpenVINO engine from its record: no PyTorch model, the same bytes, never a stale engine."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from knowledge_map.backends import cosines
from knowledge_map.corpus import load_corpus, write_corpus
from knowledge_map.embed import embed_shard, text_embedder
from knowledge_map.engine_restart import FIXED_PROBES, JsonTokenizer, record_fields, record_path, tokenizer_settings
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.models import load_model, resolve_model_path

COMMON = dict(max_seq_length=128, batch_size=16, device="cpu", backend="openvino", cpu_precision="float32")
RESTART = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from knowledge_map.backends import cosines
from knowledge_map.embed import embed_shard, text_embedder
from knowledge_map.errors import KnowledgeMapError
corpus, out, cache, model, settings = sys.argv[1:]
embed_shard(corpus, 0, 2, out, model_name=model, cache_dir=cache, **json.loads(settings))
print(json.dumps(sorted(name for name in ("sentence_transformers", "transformers") if name in sys.modules)))
"""

TEXTS_RESTART = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from knowledge_map.embed import text_embedder
corpus, cache, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
vectors = text_embedder("all-MiniLM-L6-v2", 128, "", "auto", corpus, cache)(texts)
imported = sorted(name for name in ("sentence_transformers", "transformers") if name in sys.modules)
print(json.dumps({"imported": imported, "vectors": vectors.tolist()}))
"""
NAMES = ["What is photosynthesis?", "Kings of France", "Chemical elements", "Rivers and lakes"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.parquet"
    write_corpus(load_corpus("vital-articles", limit=96), path)
    return str(path)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    """A cache with the converted model and its engine record, and the shard the full build wrote."""
    folder = tmp_path_factory.mktemp("built")
    embed_shard(corpus, 0, 2, str(folder / "full.h5"), model_name="all-MiniLM-L6-v2",
                cache_dir=str(folder / "cache"), **COMMON)
    return folder


def restart_in_fresh_python(corpus: str, out: Path, cache: Path, model: str = "all-MiniLM-L6-v2"):
    """embed_shard in a new interpreter: (modules of sentence-transformers/transformers it imported, its log)."""
    done = subprocess.run([sys.executable, "-c", RESTART, corpus, str(out), str(cache), model, json.dumps(COMMON)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def shard_contents(path: Path) -> tuple[bytes, bytes, dict]:
    with h5py.File(path) as h5:
        attrs = {k: v for k, v in h5.attrs.items() if k != "elapsed_seconds"}
        return h5["embeddings"][:].tobytes(), h5["rows"][:].tobytes(), attrs


def records(cache: Path) -> list[Path]:
    return sorted(cache.glob("engine-*.json"))


@pytest.mark.slow  # converts the model and embeds shards
def test_a_restarted_shard_loads_no_pytorch_model_and_writes_the_same_bytes(corpus, built, tmp_path):
    assert len(records(built / "cache")) == 1
    imported, log = restart_in_fresh_python(corpus, tmp_path / "restart.h5", built / "cache")
    assert "restarted the engine" in log
    assert imported == []
    full, restarted = shard_contents(built / "full.h5"), shard_contents(tmp_path / "restart.h5")
    assert full[0] == restarted[0] and full[1] == restarted[1]
    assert full[2].keys() == restarted[2].keys()
    assert all(np.array_equal(full[2][k], restarted[2][k]) for k in full[2])


def tamper_unreadable(record_file: Path, cache: Path) -> None:
    record_file.write_text("{", encoding="utf-8")


def tamper_tokens(record_file: Path, cache: Path) -> None:
    edit(record_file, lambda r: r.update(probe_sha256="0" * 64))


def tamper_embeddings(record_file: Path, cache: Path) -> None:
    edit(record_file, lambda r: r.update(probe_embeddings=(-np.asarray(r["probe_embeddings"])).tolist()))


def tamper_tokenizer(record_file: Path, cache: Path) -> None:
    edit(record_file, lambda r: r["tokenizer"].update(json="not a tokenizer"))


def tamper_converted_model(record_file: Path, cache: Path) -> None:
    """The record names a converted model the cache does not hold."""
    edit(record_file, lambda r: r["converted"].update(modules=["Transformer"]))


def tamper_settings(record_file: Path, cache: Path) -> None:
    edit(record_file, lambda r: r["fields"].update(max_seq_length=64))


def edit(record_file: Path, change) -> None:
    record = json.loads(record_file.read_text(encoding="utf-8"))
    change(record)
    record_file.write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.slow  # converts the model and embeds shards
@pytest.mark.parametrize("tamper", [tamper_unreadable, tamper_tokens, tamper_embeddings, tamper_tokenizer,
                                    tamper_converted_model, tamper_settings])
def test_a_record_that_does_not_hold_builds_in_full_and_is_written_again(corpus, built, tmp_path, caplog, tamper):
    cache = tmp_path / "cache"
    shutil.copytree(built / "cache", cache)
    (record_file,) = records(cache)
    tamper(record_file, cache)
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        embed_shard(corpus, 0, 2, str(tmp_path / "again.h5"), model_name="all-MiniLM-L6-v2", cache_dir=str(cache),
                    **COMMON)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("restarted the engine" in m for m in messages)
    assert sum("building the engine in full" in m for m in messages) == 1
    assert any("recorded the engine" in m for m in messages)
    assert shard_contents(tmp_path / "again.h5")[0] == shard_contents(built / "full.h5")[0]
    # Written again, the record serves the next shard.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        embed_shard(corpus, 0, 2, str(tmp_path / "next.h5"), model_name="all-MiniLM-L6-v2", cache_dir=str(cache),
                    **COMMON)
    assert any("restarted the engine" in r.getMessage() for r in caplog.records)
    assert shard_contents(tmp_path / "next.h5")[0] == shard_contents(built / "full.h5")[0]


def model_variant(tmp_path: Path, **sentence_bert_config) -> str:
    """A copy of the packaged MiniLM whose sentence_bert_config.json sets ``sentence_bert_config``."""
    folder = tmp_path / "model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    (folder / "sentence_bert_config.json").write_text(json.dumps({**config, **sentence_bert_config}))
    return str(folder)


@pytest.mark.slow  # converts the model and embeds shards
def test_a_tokenizer_that_preprocessing_overrides_is_never_recorded(corpus, tmp_path, caplog):
    """sentence-transformers drops the special tokens here; the tokenizer alone would not: no record, no restart."""
    model = model_variant(tmp_path, processing_kwargs={"text": {"add_special_tokens": False}})
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        for name in ("first.h5", "second.h5"):
            embed_shard(corpus, 0, 2, str(tmp_path / name), model_name=model, cache_dir=str(cache), **COMMON)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("the tokenizer alone does not tokenise" in m for m in messages) == 2
    assert records(cache) == [] and not any("restarted the engine" in m for m in messages)
    assert shard_contents(tmp_path / "first.h5")[0] == shard_contents(tmp_path / "second.h5")[0]


@pytest.mark.slow  # converts the model and embeds shards
def test_a_normaliser_that_sentence_transformers_adds_is_kept_by_the_restart(corpus, tmp_path):
    """A cased tokenizer.json with do_lower_case: sentence-transformers adds a lowercase step the file lacks."""
    model = model_variant(tmp_path, do_lower_case=True)
    tokenizer_file = Path(model) / "tokenizer.json"
    tokenizer = json.loads(tokenizer_file.read_text())
    tokenizer["normalizer"]["lowercase"] = False
    tokenizer_file.write_text(json.dumps(tokenizer))
    cache = tmp_path / "cache"
    embed_shard(corpus, 0, 2, str(tmp_path / "full.h5"), model_name=model, cache_dir=str(cache), **COMMON)
    (record_file,) = records(cache)
    assert "Lowercase" in json.loads(record_file.read_text())["tokenizer"]["json"]  # the step the file lacks
    imported, log = restart_in_fresh_python(corpus, tmp_path / "restart.h5", cache, model)
    assert "restarted the engine" in log and imported == []
    assert shard_contents(tmp_path / "full.h5")[0] == shard_contents(tmp_path / "restart.h5")[0]


def test_the_tokenizer_alone_tokenises_as_the_model_with_a_prompt_and_truncation():
    model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 32)
    tokenizer = JsonTokenizer(tokenizer_settings(model), 32)
    texts = list(FIXED_PROBES)
    for prompt in ("", "query: "):
        expected = model.preprocess(texts, prompt=prompt or None)
        features = tokenizer.features([prompt + t for t in texts])
        assert features["input_ids"].shape == (len(texts), 32)  # the longest probe is cut at max_seq_length
        for name in ("input_ids", "attention_mask"):
            assert np.array_equal(features[name], expected[name].numpy())
    # What token_lengths reads: unpadded ids, truncated.
    mine = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=32)["input_ids"]
    assert mine == model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=32)["input_ids"]
    with pytest.raises(ValueError, match="truncates at 32 tokens only"):
        tokenizer(texts, max_length=64)


def test_padding_and_truncation_sides_follow_the_model():
    model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 8)
    settings = tokenizer_settings(model)
    assert settings["padding_side"] == "right" and settings["truncation_side"] == "right"
    left = JsonTokenizer({**settings, "padding_side": "left"}, 8)
    short, long = left.features(["Jazz.", "Volcano. A rupture in the crust of a planet."])["attention_mask"]
    assert short[0] == 0 and short[-1] == 1 and long.all()
    # Left truncation keeps a text's end, as transformers does with truncation_side="left".
    text = "one two three four five six seven eight nine ten eleven twelve"
    model.tokenizer.truncation_side = "left"
    expected = model.preprocess([text])["input_ids"].numpy()
    kept = JsonTokenizer(tokenizer_settings(model), 8).features([text])["input_ids"]
    assert np.array_equal(kept, expected)
    assert "twelve" in model.tokenizer.decode(kept[0]) and "one" not in model.tokenizer.decode(kept[0])


def test_each_setting_has_its_own_record(tmp_path):
    base = dict(model_sha256="a" * 64, corpus_sha256="b" * 64, max_seq_length=256, prompt="")
    paths = {record_path(str(tmp_path), record_fields(**base))}
    for key, value in (("model_sha256", "c" * 64), ("corpus_sha256", "d" * 64), ("max_seq_length", 128),
                       ("prompt", "query: ")):
        paths.add(record_path(str(tmp_path), record_fields(**{**base, key: value})))
    assert len(paths) == 5
    # The same settings, computed again (library versions read afresh): the same record.
    assert record_path(str(tmp_path), record_fields(**dict(reversed(list(base.items()))))) == \
        record_path(str(tmp_path), record_fields(**base))


@pytest.mark.slow  # converts the model
def test_questions_and_label_names_share_the_record_and_embed_in_float32(corpus, tmp_path, caplog):
    cache = tmp_path / "cache"
    first = text_embedder("all-MiniLM-L6-v2", 128, "", "auto", corpus, str(cache))(NAMES)
    assert len(records(cache)) == 1
    done = subprocess.run([sys.executable, "-c", TEXTS_RESTART, corpus, str(cache), json.dumps(NAMES)],
                          capture_output=True, text=True, check=True)
    later = json.loads(done.stdout.strip().splitlines()[-1])
    assert later["imported"] == []
    assert np.asarray(later["vectors"], dtype=np.float32).tobytes() == first.tobytes()
    # OpenVINO float32 is PyTorch float32 within the conversion check's bar.
    torch_vectors = text_embedder("all-MiniLM-L6-v2", 128, "", "torch", corpus, str(cache))(NAMES)
    assert not np.array_equal(torch_vectors, first) and cosines(first, torch_vectors).min() >= 0.9999
    # The record is the model's, not the precision's: a shard starts from the one the questions wrote.
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        embed_shard(corpus, 0, 2, str(tmp_path / "shard.h5"), model_name="all-MiniLM-L6-v2", cache_dir=str(cache),
                    **COMMON)
    assert any("restarted the engine" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # builds a small Qwen3 and tries to convert it
def test_a_model_openvino_cannot_run_embeds_short_texts_with_pytorch_and_is_tried_once(corpus, tmp_path, caplog):
    """A 2-layer Qwen3 (left padding, last-token pooling) fails the conversion check: PyTorch float32, warned."""
    from knowledge_map.devtools.random_model import build_random_qwen3

    model = build_random_qwen3(str(tmp_path / "qwen3"), num_hidden_layers=2, hidden_size=96, intermediate_size=192,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=24, vocab_size=32000)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        first = text_embedder(model, 128, "", "auto", corpus, str(cache))(NAMES)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "OpenVINO cannot run this model" in warnings[0] and "PyTorch float32" in warnings[0]
    torch_vectors = text_embedder(model, 128, "", "torch", corpus, str(cache))(NAMES)
    assert first.tobytes() == torch_vectors.tobytes()
    # The failure is recorded: the next job goes straight to PyTorch, without converting again.
    (record_file,) = records(cache)
    assert "failure" in json.loads(record_file.read_text())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        again = text_embedder(model, 128, "", "auto", corpus, str(cache))(NAMES)
    assert again.tobytes() == first.tobytes()
    messages = [r.getMessage() for r in caplog.records]
    assert sum(f"recorded in {record_file}" in m for m in messages) == 1


@pytest.mark.slow  # quantizes the model twice
def test_an_int8_shard_started_from_a_float32_record_quantizes_as_a_full_build(corpus, tmp_path, caplog):
    """The record is written by a float32 job; the first int8 shard restarts from it and quantizes itself."""
    int8 = {"calibration_texts": 24, "guard_texts": 40, "min_overlap": 0.8}
    settings = {**COMMON, "cpu_precision": "int8", "int8": int8}
    full = embed_shard(corpus, 0, 2, str(tmp_path / "full.h5"), model_name="all-MiniLM-L6-v2",
                       cache_dir=str(tmp_path / "full-cache"), **settings)
    cache = tmp_path / "cache"
    text_embedder("all-MiniLM-L6-v2", 128, "", "auto", corpus, str(cache))(NAMES)  # writes the record
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        restarted = embed_shard(corpus, 0, 2, str(tmp_path / "restart.h5"), model_name="all-MiniLM-L6-v2",
                                cache_dir=str(cache), **settings)
    messages = [r.getMessage() for r in caplog.records]
    assert any("quantizing to int8" in m for m in messages) and any("restarted the engine" in m for m in messages)
    assert restarted["quantization"] == full["quantization"] and restarted["int8_guard"] == full["int8_guard"]
    assert shard_contents(tmp_path / "restart.h5")[0] == shard_contents(tmp_path / "full.h5")[0]


@pytest.mark.slow  # converts the model
def test_a_bfloat16_shard_restarts_to_the_same_bytes(corpus, built, tmp_path, caplog):
    settings = {**COMMON, "cpu_precision": "bfloat16"}
    embed_shard(corpus, 1, 2, str(tmp_path / "full.h5"), model_name="all-MiniLM-L6-v2",
                cache_dir=str(tmp_path / "cache"), **settings)
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        embed_shard(corpus, 1, 2, str(tmp_path / "restart.h5"), model_name="all-MiniLM-L6-v2",
                    cache_dir=str(tmp_path / "cache"), **settings)
    assert any("restarted the engine" in r.getMessage() for r in caplog.records)
    assert shard_contents(tmp_path / "full.h5")[0] == shard_contents(tmp_path / "restart.h5")[0]


@pytest.mark.slow  # converts the model
def test_a_record_that_cannot_be_written_is_a_warning_not_a_failed_shard(corpus, built, tmp_path, caplog):
    cache = tmp_path / "cache"
    shutil.copytree(built / "cache", cache)
    (record_file,) = records(cache)
    record_file.unlink()
    record_file.mkdir()  # neither readable as a record nor replaceable by one
    with caplog.at_level(logging.INFO, logger="knowledge_map"):
        embed_shard(corpus, 0, 2, str(tmp_path / "shard.h5"), model_name="all-MiniLM-L6-v2", cache_dir=str(cache),
                    **COMMON)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unreadable engine record" in m for m in warnings) and any("engine record not written" in m for m in warnings)
    assert shard_contents(tmp_path / "shard.h5")[0] == shard_contents(built / "full.h5")[0]


@pytest.mark.slow  # converts the model
def test_pooling_that_leaves_the_prompt_out_is_refused_by_openvino_and_embedded_by_pytorch(corpus, tmp_path, caplog):
    """The converted graph cannot leave the prompt out of the mean: checked with the prompt, it is refused."""
    model = model_variant(tmp_path)
    pooling = Path(model) / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "include_prompt": False}))
    with pytest.raises(KnowledgeMapError, match="disagrees with PyTorch"):
        embed_shard(corpus, 0, 2, str(tmp_path / "shard.h5"), model_name=model, cache_dir=str(tmp_path / "cache"),
                    **{**COMMON, "prompt": "query: "})
    with caplog.at_level(logging.WARNING, logger="knowledge_map"):
        vectors = text_embedder(model, 128, "query: ", "auto", corpus, str(tmp_path / "cache"))(NAMES)
    assert sum("OpenVINO cannot run this model" in r.getMessage() for r in caplog.records) == 1
    assert vectors.tobytes() == text_embedder(model, 128, "query: ", "torch", corpus, None)(NAMES).tobytes()
