"""Tokenising once (knowledge_map.tokens): the same features as sentence-transformers, or its own path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import spread_articles

from knowledge_map.backends import TorchEncoder
from knowledge_map.embed import (
    CHUNK_TEXTS,
    FIRST_CHUNK_BATCHES,
    FLOP_SAMPLE,
    embed_texts,
    estimated_flops,
    text_chunks,
    token_lengths,
)
from knowledge_map.flops import encoder_flops, model_shape
from knowledge_map.models import load_model
from knowledge_map.tokens import (
    CUT_CHARS_PER_TOKEN,
    CUT_MARGIN,
    FIXED_PROBES,
    TokenizedTexts,
    check_fast_tokenizer,
    cut_text,
    fast_tokenizer,
    overflow_tokens,
    preprocess_arrays,
)


@pytest.fixture(scope="module")
def model():
    return load_model("all-MiniLM-L6-v2", "cpu", "float32", 64)


@pytest.fixture(scope="module")
def texts():
    return spread_articles(48) + list(FIXED_PROBES)


class WrappedModel:
    """A SentenceTransformer whose preprocessing does one thing more: spells "colour" as "color" first (a step
    its tokenizer's JSON does not hold), or adds a per-text array ``extra_key`` that its forward pass drops."""

    def __init__(self, inner, respell: bool = False, extra_key: str | None = None):
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.max_seq_length = inner.max_seq_length
        self.device = inner.device
        self.respell = respell
        self.extra_key = extra_key

    def get_embedding_dimension(self):
        return self.inner.get_embedding_dimension()

    def parameters(self):
        return self.inner.parameters()

    def preprocess(self, texts, prompt=None):
        features = self.inner.preprocess([t.replace("colour", "color") if self.respell else t for t in texts],
                                         prompt=prompt)
        if self.extra_key:
            features[self.extra_key] = features["attention_mask"].sum(dim=1)
        return features

    def __call__(self, features):
        return self.inner({k: v for k, v in features.items() if k != self.extra_key})


def test_the_tokenizer_alone_gives_what_preprocess_gives(model, texts):
    fast = check_fast_tokenizer(model, texts, "")
    assert fast is not None
    expected = preprocess_arrays(model, texts[:8], "")
    assert set(fast.keys) == {k for k, v in expected.items() if isinstance(v, np.ndarray)}
    assert fast.extras == {k: v for k, v in expected.items() if not isinstance(v, np.ndarray)}


@pytest.mark.parametrize("prompt", ["", "query: "])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("multiple", [1, 16])
def test_planned_batches_equal_the_engines_own_preparation(model, texts, prompt, side, multiple):
    """Every key and id equals TorchEncoder.prepare (preprocess, then bucketing) on the same batches."""
    kept = model.tokenizer.padding_side
    model.tokenizer.padding_side = side
    try:
        fast = check_fast_tokenizer(model, texts, prompt)
        tokens = TokenizedTexts.encode(fast.tokenizer, texts, prompt, fast.keys)
        encoder = TorchEncoder(model, length_multiple=multiple)
        for rows in (np.arange(8), np.array([3, 40, 50, 51, 52]), np.array([len(texts) - 1])):
            got = encoder.from_arrays({**tokens.features(rows, multiple, model.max_seq_length), **fast.extras})
            want = encoder.prepare([texts[i] for i in rows], prompt)
            assert set(got) == set(want)
            for key, value in want.items():
                if hasattr(value, "numpy"):
                    assert np.array_equal(got[key].numpy(), value.numpy()), key
                else:
                    assert got[key] == value
    finally:
        model.tokenizer.padding_side = kept


@pytest.mark.parametrize("side", ["right", "left"])
def test_long_texts_tokenised_from_a_cut_give_the_whole_texts_tokens(model, side):
    """Long articles (cut before tokenising) and texts whose cut is too short (words of 150 letters, one
    [UNK] each: the whole text is tokenised), truncated on either side: exactly what preprocess gives."""
    limit = CUT_CHARS_PER_TOKEN * (model.max_seq_length + CUT_MARGIN)
    long = [" ".join(spread_articles(60)[i::6]) for i in range(6)]
    unknown = [" ".join(["x" * 150] * 40), "y" * 5000, "Ends with a long word " + "z" * 3000]
    assert all(len(t) > limit for t in long + unknown)
    kept = model.tokenizer.truncation_side
    model.tokenizer.truncation_side = side
    try:
        fast = check_fast_tokenizer(model, long, "")
        assert fast is not None and fast.tokenizer.settings["truncation_side"] == side
        tokens = TokenizedTexts.encode(fast.tokenizer, long + unknown, "", fast.keys)
        # The long articles took the cut path and kept it: their prefixes overflow by at least the margin.
        prefixes = fast.tokenizer.unpadded.encode_batch([cut_text(t, limit, side) for t in long])
        assert all(cut_text(t, limit, side) is not t for t in long)
        assert all(overflow_tokens(item) >= CUT_MARGIN for item in prefixes)
        got = tokens.features(np.arange(len(long) + len(unknown)))
        want = preprocess_arrays(model, long + unknown, "")
        for key in fast.keys:
            assert np.array_equal(got[key], want[key]), key
    finally:
        model.tokenizer.truncation_side = kept


def test_cut_text_stops_at_a_space_or_does_not_cut():
    text = "alpha beta gamma delta " * 10
    assert cut_text(text, 1000, "right") is text
    assert cut_text(text, 30, "right") == "alpha beta gamma delta alpha"
    assert text.endswith(cut_text(text, 30, "left")) and cut_text(text, 30, "left").startswith(" ")
    assert len(cut_text(text, 30, "left")) <= 30
    assert cut_text("x" * 100, 30, "right") == "x" * 100  # no space in the second half: not cut


def test_a_preprocessing_step_the_tokenizer_lacks_means_preprocess(model, texts):
    assert check_fast_tokenizer(WrappedModel(model, respell=True), texts, "") is not None  # no "colour": same ids
    assert check_fast_tokenizer(WrappedModel(model, respell=True), texts + ["The colour red."], "") is None
    assert check_fast_tokenizer(WrappedModel(model, extra_key="lengths"), texts, "") is None


class RecordingEncoder(TorchEncoder):
    """The PyTorch engine, keeping the token ids of every batch it runs."""

    def __init__(self, model):
        super().__init__(model)
        self.batches = []

    def __call__(self, features):
        self.batches.append(features["input_ids"].numpy().tolist())
        return super().__call__(features)


def test_either_path_runs_the_same_batches_so_the_same_bytes(model, texts):
    """Through preprocess batch by batch, or the tokenizer alone: the same batches of the same ids, so the
    same bytes, with a prompt too.  Texts of 62 and 63 tokens both reach the 64-token cap with the prompt's
    two, so a plan on lengths without the prompt would order them the other way."""
    slow = WrappedModel(model, extra_key="lengths")
    near_cap = ["alpha " * k for k in (60, 61, 62)] + texts
    assert list(token_lengths(model, near_cap[:3])) == [62, 63, 64]
    for prompt in ("", "query: "):
        assert fast_tokenizer(slow, near_cap, prompt) is None
        assert fast_tokenizer(model, near_cap, prompt) is not None
        quick, careful = RecordingEncoder(model), RecordingEncoder(slow)
        fast = embed_texts(model, near_cap, 2, prompt, encoder=quick)
        assert fast.tobytes() == embed_texts(slow, near_cap, 2, prompt, encoder=careful).tobytes()
        assert quick.batches == careful.batches


def test_the_check_runs_once_per_model_prompt_and_length(texts):
    model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 64)
    first = fast_tokenizer(model, texts, "")
    assert fast_tokenizer(model, texts, "") is first
    prompted = fast_tokenizer(model, texts, "query: ")
    assert prompted is not None and prompted is not first
    model.max_seq_length = 32
    shorter = fast_tokenizer(model, texts, "")
    assert shorter is not first and shorter.tokenizer.max_seq_length == 32


def test_long_context_models_get_chunks_of_fewer_texts():
    assert [len(c) for c in text_chunks(20_000, 8, 32_768)][:3] == [32, 64, 64]  # CHUNK_TOKENS / 32,768 tokens
    assert [len(c) for c in text_chunks(300, 64, 10**6)] == [256, 44]  # never under one batch of 64


def test_chunks_cover_every_text_once():
    for n, batch in ((0, 8), (5, 8), (32, 8), (33, 8), (10_000, 64)):
        chunks = text_chunks(n, batch)
        joined = np.concatenate(chunks) if chunks else np.zeros(0, dtype=int)
        assert np.array_equal(joined, np.arange(n))
        if n > FIRST_CHUNK_BATCHES * batch:
            assert len(chunks[0]) == FIRST_CHUNK_BATCHES * batch
            assert all(len(c) <= CHUNK_TEXTS for c in chunks)


def test_the_flop_estimate_is_exact_below_the_sample_and_close_above(model):
    few = spread_articles(200)
    assert estimated_flops(model, few) == pytest.approx(encoder_flops(token_lengths(model, few), *model_shape(model)))
    many = spread_articles(3 * FLOP_SAMPLE)
    exact = encoder_flops(token_lengths(model, many), *model_shape(model))
    assert estimated_flops(model, many) == pytest.approx(exact, rel=0.05)
    assert estimated_flops(model, []) == 0.0
