"""A sentence-transformers model of Qwen3-Embedding-0.6B's exact shape, with random weights, for speed measurements.

No model hub is reachable from the machines this project is measured on,
so the real Qwen3-Embedding-0.6B weights cannot be had.  Speed does not
depend on the weights' values: the same architecture (28 layers, hidden
1,024, MLP 3,072, 16 query and 8 key/value heads of 128, vocabulary
151,669, RoPE, RMSNorm, SwiGLU), dtype and token counts run the same
kernels on the same shapes, so the same FLOP in the same time.  What
random weights cannot show is accuracy: that is judged on real weights
(MiniLM, :mod:`knowledge_map.gpu`'s check and ``tests/test_gpu.py``).

The tokenizer is all-MiniLM-L6-v2's WordPiece (shipped with the embedded
default; its ids fit in Qwen3's vocabulary), padded on the left and pooled
on the last token as Qwen3-Embedding is.  Benchmarks truncate texts to a
token count, so the tokenizer changes what the tokens are, not how many.
"""

from __future__ import annotations

import os
from typing import Any

#: Qwen/Qwen3-Embedding-0.6B's config.json, less the fields that do not change the computation.
QWEN3_06B = {
    "vocab_size": 151669,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "attention_bias": False,
    "tie_word_embeddings": True,
}


def build_random_qwen3(folder: str, seed: int = 0, device: str = "cpu", **overrides: Any) -> str:
    """Write a random-weight Qwen3-0.6B-shaped sentence-transformers model to ``folder``; return its path.

    ``overrides`` change config fields (tests build a 2-layer miniature).
    Weights are bfloat16 (what the workflow runs on CUDA), initialised on
    ``device`` from ``seed``.
    """
    import json

    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    from knowledge_map.models import resolve_model_path

    config = Qwen3Config(**{**QWEN3_06B, **overrides}, pad_token_id=0)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3Model(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    del model
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(folder)
    # The sentence-transformers layout (as the packaged MiniLM's): transformer, last-token pooling, normalise.
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": config.hidden_size, "pooling_mode_lasttoken": True,
               "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": False}
    files = {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        os.path.join("1_Pooling", "config.json"): pooling,
    }
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(folder, "2_Normalize"), exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
    return folder
