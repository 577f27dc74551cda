"""A map is what its shards' identity says: changed weights re-embed, and mixed shards are never merged."""

from __future__ import annotations

import shutil

import pytest
from conftest import run_snakemake, small_corpus_records, write_jsonl

from knowledge_map.models import model_slug, resolve_model_path

pytestmark = pytest.mark.e2e


def replace_weights(folder) -> None:
    """Write a new ``model.safetensors``: the same tensors, one of them changed (as a fine-tune would)."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] * 1.01
    path.unlink()
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_new_weights_in_a_local_model_folder_re_embed_and_a_mix_is_refused(tmp_path):
    """Replacing model.safetensors plans every shard; forcing one shard alone leaves a mix the merge refuses."""
    model = tmp_path / "my-minilm"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), model)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", small_corpus_records(per_topic=1)[:16])
    config = {"corpus": {"source": "file", "path": str(corpus)}, "shards": 2,
              "model": {"name": str(model), "backend": "torch"}}
    shards = [f"results/{model_slug(str(model))}/shards/shard-{i:04d}.h5" for i in range(2)]
    merged = f"results/{model_slug(str(model))}/embeddings.h5"
    questions = f"results/{model_slug(str(model))}/questions.h5"
    work = tmp_path / "work"
    run_snakemake(work, config, *shards, questions)
    assert "Nothing to be done" in run_snakemake(work, config, "-n", *shards, questions).stdout

    replace_weights(model)
    planned = run_snakemake(work, config, "-n", *shards, questions).stdout
    assert "embed_shard" in planned and "Nothing to be done" not in planned, planned[-2000:]
    assert "embed_questions" in planned, planned[-2000:]  # questions are embedded in the articles' space, again

    # Bypass the trigger on purpose (only mtimes count), redo one shard: the merge must still refuse the mix.
    run_snakemake(work, config, "--rerun-triggers=mtime", f"--forcerun={shards[1]}", *shards)
    result = run_snakemake(work, config, "--rerun-triggers=mtime", merged, check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "knowledge-map error" in line]
    assert len(errors) == 1, (result.stdout + result.stderr)[-3000:]
    assert f"{shards[1]} and {shards[0]} were made differently (model_sha256 " in errors[0], errors[0]
    assert not (work / merged).exists()
