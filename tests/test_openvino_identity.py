"""The OpenVINO cache is keyed on the model's real files, hub models included, and checked on load."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs openvino")

#: Runs in a fresh interpreter, so the hub cache and offline mode are set before huggingface_hub loads.
SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys
    import numpy as np, torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel
    from knowledge_map.backends import OpenVINOEncoder, openvino_cache_key
    from knowledge_map.embed import embed_texts
    from knowledge_map.errors import KnowledgeMapError
    from knowledge_map.identity import model_sha256
    from knowledge_map.models import load_model, resolve_model_path

    hub, cache = sys.argv[1], sys.argv[2]
    # Two hub models with the same module layout and library versions, different weights (seeds).
    for repo, seed in (("fake/a", 1), ("fake/c", 2)):
        folder = os.path.join(hub, "models--" + repo.replace("/", "--"))
        commit = f"{seed:040x}"
        torch.manual_seed(seed)
        word = models.Transformer(resolve_model_path("all-MiniLM-L6-v2"), max_seq_length=64)
        config = BertConfig(vocab_size=word.auto_model.config.vocab_size, hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=64)
        word.model = BertModel(config)
        SentenceTransformer(modules=[word, models.Pooling(32, "mean")]).save(os.path.join(folder, "snapshots", commit))
        os.makedirs(os.path.join(folder, "refs"))
        open(os.path.join(folder, "refs", "main"), "w").write(commit)

    texts = ["Volcanoes erupt lava.", "Jazz began in New Orleans.", "Cells divide by mitosis."]
    out = {}
    for name in ("fake/a", "fake/c"):
        model = load_model(name, "cpu", "float32", 64)
        sha = model_sha256(name)
        encoder = OpenVINOEncoder(model, "float32", 1, sha, cache)
        out[name] = {"sha": sha, "key": openvino_cache_key(model, sha),
                     "openvino": embed_texts(model, texts, 8, encoder=encoder).tolist(),
                     "torch": embed_texts(model, texts, 8).tolist()}
    out["entries"] = sorted(os.listdir(cache))
    # An entry under c's key that holds a's conversion (a collision, or a hand-copied folder) is refused.
    shutil.rmtree(os.path.join(cache, out["fake/c"]["key"]))
    shutil.copytree(os.path.join(cache, out["fake/a"]["key"]), os.path.join(cache, out["fake/c"]["key"]))
    try:
        OpenVINOEncoder(load_model("fake/c", "cpu", "float32", 64), "float32", 1, out["fake/c"]["sha"], cache)
        out["collision"] = None
    except KnowledgeMapError as error:
        out["collision"] = str(error)
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_two_hub_models_never_share_a_converted_network(tmp_path):
    """fake/c embeds with its own conversion, not fake/a's (they used to share one cache entry)."""
    import numpy as np

    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "hub"), str(tmp_path / "ov")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    a, c = out["fake/a"], out["fake/c"]
    assert len(a["sha"]) == 64 and len(c["sha"]) == 64 and a["sha"] != c["sha"]
    assert out["entries"] == sorted([a["key"], c["key"]]) and a["key"] != c["key"]
    for model in (a, c):
        cosine = (np.array(model["openvino"]) * np.array(model["torch"])).sum(axis=1)
        assert cosine.min() > 0.999
    assert np.abs(np.array(a["openvino"]) - np.array(c["openvino"])).max() > 0.01
    assert out["collision"] is not None and out["collision"].startswith(str(tmp_path / "ov" / c["key"]))
    assert "not made from this model's files" in out["collision"]


def test_a_full_disk_while_caching_the_converted_model_is_one_line_and_leaves_nothing(tmp_path):
    """OpenVINO reports a full disk as a bare C++ stream error; here a 1 MB file-size limit stands in for it."""
    script = textwrap.dedent(f"""
        import os, resource, signal
        from knowledge_map.backends import load_openvino_model
        from knowledge_map.errors import KnowledgeMapError
        from knowledge_map.models import load_model
        model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 64)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            load_openvino_model(model, "a" * 64, {str(tmp_path / "cache")!r})
        except KnowledgeMapError as error:
            print("ERROR", error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    line = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(line) == 1, result.stdout + result.stderr[-3000:]
    assert f"{tmp_path / 'cache'}: could not write the OpenVINO model (" in line[0] and "GB free there" in line[0]
    assert os.listdir(tmp_path / "cache") == []  # no half-written entry, no temporary folder
