"""Tokenising a job's texts once, in the ``tokenizers`` library, exactly as sentence-transformers would.

Why: the embedding loop used to tokenise every text twice, once for the
batch plan (:func:`knowledge_map.embed.token_lengths`) and once per batch
through ``SentenceTransformer.preprocess``, whose Python side (lists of
ids turned into tensors) holds the GIL while the main thread launches the
GPU's work.  Measured on an H200 (Qwen3-0.6B shape, 2,048 texts cut at 512
tokens, compiled blocks; docs/gpu.md): 675 texts/s that way, 795 with the
plan's lengths given, 927 with every batch's features ready; the per-batch
``preprocess`` took 62 ms there against 13 ms for the same texts in
``tokenizers`` alone.

How: :func:`fast_tokenizer` rebuilds the tokenizer sentence-transformers
runs (its fast backend's JSON, with any ``do_lower_case`` step it added)
as a :class:`JsonTokenizer`, and keeps it only when it gives exactly the
features ``preprocess`` gives (every key, every id, padding and truncation
included) on :data:`FIXED_PROBES`, a text of twice ``max_seq_length``
words and a sample of the job's own texts, with the job's prompt.
Otherwise the loop tokenises per batch through ``preprocess`` as before;
both paths plan on the lengths of ``prompt + text``, so the batches and the
features an engine sees do not depend on which path made them.
:class:`TokenizedTexts` holds one chunk's ids, unpadded;
:meth:`TokenizedTexts.features` pads a planned batch the way the tokenizer
and :func:`knowledge_map.backends.pad_features` would.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from knowledge_map.backends import CHECK_SENTENCES, bucket_length

log = logging.getLogger(__name__)

#: Texts every tokenizer comparison runs: the conversion check's sentences plus texts that stress tokenisation.
FIXED_PROBES = CHECK_SENTENCES + (
    "",
    "   ",
    "Ünïcödé ﬁnance — Tōkyō 東京, Ελλάδα, Россия 🙂\u200b\u00ad e\u0301",
    "Truncation. " + " ".join(f"word{i}" for i in range(2048)),
)
#: Feature keys the tokenizers library gives (``type_ids`` as ``token_type_ids``); any other array in a model's
#: ``preprocess`` output means: tokenise through ``preprocess``.
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")
#: Job texts among the probes of :func:`fast_tokenizer` (evenly spaced over the job).
SAMPLED_TEXTS = 32
#: A text longer than this many characters per kept token is tokenised from a prefix (:func:`cut_text`) first.
#: English prose runs 4-5 characters per token (the vital articles: 4.5 with MiniLM's tokenizer).
CUT_CHARS_PER_TOKEN = 8
#: Tokens a prefix must give beyond ``max_seq_length`` for its first ones to be kept; else the whole text is tokenised.
CUT_MARGIN = 32


class JsonTokenizer:
    """A tokenizer's JSON run by the ``tokenizers`` library, as ``SentenceTransformer.preprocess`` runs it.

    ``settings`` (:func:`tokenizer_settings`): the JSON, the padding side,
    pad token and id, and the truncation side.  Truncation at
    ``max_seq_length`` (longest first); padding is
    :meth:`TokenizedTexts.features`'s.  Called like a transformers
    tokenizer by :func:`knowledge_map.embed.token_lengths`.
    """

    def __init__(self, settings: dict[str, Any], max_seq_length: int):
        from tokenizers import Tokenizer

        self.settings = dict(settings)
        self.max_seq_length = int(max_seq_length)
        truncation = {"max_length": self.max_seq_length, "strategy": "longest_first",
                      "direction": settings["truncation_side"]}
        self.unpadded = Tokenizer.from_str(settings["json"])
        self.unpadded.no_padding()
        self.unpadded.enable_truncation(**truncation)

    def __call__(self, texts: Sequence[str], add_special_tokens: bool = True, truncation: bool = True,
                 max_length: int | None = None) -> dict[str, list[list[int]]]:
        """Token ids of each text, unpadded, cut at ``max_seq_length`` (the only call :func:`token_lengths` makes)."""
        if not truncation or max_length not in (None, self.max_seq_length):
            raise ValueError(f"JsonTokenizer truncates at {self.max_seq_length} tokens only")
        encoded = self.unpadded.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [item.ids for item in encoded]}

    def features(self, texts: Sequence[str], keys: Sequence[str] = TOKEN_KEYS[:2]) -> dict[str, np.ndarray]:
        """``keys`` of ``texts`` as one padded batch (``input_ids``, ``attention_mask``, ``token_type_ids``), int64:
        :meth:`TokenizedTexts.features`, the padding the embedding loop runs."""
        tokens = TokenizedTexts.encode(self, texts, "", keys)
        out = tokens.features(np.arange(len(texts)))
        return {key: out[key] for key in keys}


def tokenizer_settings(model: Any) -> dict[str, Any] | None:
    """What :class:`JsonTokenizer` needs of a loaded SentenceTransformer's tokenizer; None without a fast one or a pad token."""
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(tokenizer, JsonTokenizer):
        return tokenizer.settings
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer.pad_token is None:
        return None
    return {"json": backend.to_str(), "padding_side": tokenizer.padding_side, "pad_token_id": int(tokenizer.pad_token_id),
            "pad_token": tokenizer.pad_token, "truncation_side": getattr(tokenizer, "truncation_side", "right")}


class TokenizedTexts:
    """Unpadded token ids (and type ids) of some texts, cut at ``max_seq_length``; ``lengths`` for the plan."""

    def __init__(self, ids: list[np.ndarray], type_ids: list[np.ndarray] | None, settings: dict[str, Any]):
        self.ids = ids
        self.type_ids = type_ids
        self.side = settings["padding_side"]
        self.pad_id = int(settings["pad_token_id"])
        self.lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))

    @classmethod
    def encode(cls, tokenizer: JsonTokenizer, texts: Sequence[str], prompt: str, keys: Sequence[str]) -> TokenizedTexts:
        """``prompt + text`` for each text (as sentence-transformers joins them), in one parallel batch.

        A long text is tokenised from its start (its end where truncation is
        on the left) up to a space (:func:`cut_text`), and kept when the cut
        lies at least :data:`CUT_MARGIN` tokens past the truncation: the
        tokens kept come from whole words before the cut, which a tokenizer
        that splits words at spaces (WordPiece, byte-level BPE, Metaspace)
        tokenises as the whole text does; :func:`check_fast_tokenizer` runs
        long texts through this path too.  Otherwise the whole text is
        tokenised.
        Wikipedia articles run to tens of thousands of characters, of which
        a 512-token model reads the first two or three thousand.
        """
        joined = [(prompt or "") + text for text in texts]
        side = tokenizer.settings["truncation_side"]
        limit = CUT_CHARS_PER_TOKEN * (tokenizer.max_seq_length + CUT_MARGIN)
        cut = [cut_text(text, limit, side) for text in joined]
        encoded = tokenizer.unpadded.encode_batch(cut)
        short = [i for i, item in enumerate(encoded) if cut[i] is not joined[i] and overflow_tokens(item) < CUT_MARGIN]
        for i, item in zip(short, tokenizer.unpadded.encode_batch([joined[i] for i in short])):
            encoded[i] = item
        ids = [np.array(item.ids, dtype=np.int64) for item in encoded]
        type_ids = [np.array(item.type_ids, dtype=np.int64) for item in encoded] if "token_type_ids" in keys else None
        return cls(ids, type_ids, tokenizer.settings)

    def features(self, rows: np.ndarray, multiple: int = 1, cap: int | None = None) -> dict[str, np.ndarray]:
        """The padded batch of ``rows``: padded to its longest text, rounded up as the engine buckets lengths."""
        longest = int(self.lengths[rows].max())
        # As TorchEncoder.prepare: rounded up only when the engine buckets (a batch of empty texts stays empty).
        length = bucket_length(longest, multiple, cap) if multiple > 1 else longest
        out = {"input_ids": np.full((len(rows), length), self.pad_id, dtype=np.int64),
               "attention_mask": np.zeros((len(rows), length), dtype=np.int64)}
        if self.type_ids is not None:
            out["token_type_ids"] = np.zeros((len(rows), length), dtype=np.int64)
        for slot, row in enumerate(rows):
            n = int(self.lengths[row])
            span = slice(length - n, length) if self.side == "left" else slice(0, n)
            out["input_ids"][slot, span] = self.ids[row]
            out["attention_mask"][slot, span] = 1
            if self.type_ids is not None:
                out["token_type_ids"][slot, span] = self.type_ids[row]
        return out


def cut_text(text: str, limit: int, side: str) -> str:
    """The first ``limit`` characters of ``text`` up to its last space (the last ones after a space for
    ``side`` "left"); ``text`` itself when it is shorter, or has no space in the second half of that span."""
    if len(text) <= limit:
        return text
    if side == "left":
        start = text.find(" ", len(text) - limit, len(text) - limit // 2)
        return text[start:] if start >= 0 else text
    end = text.rfind(" ", limit // 2, limit)
    return text[:end] if end >= 0 else text


def overflow_tokens(encoding: Any) -> int:
    """Tokens truncation dropped from ``encoding`` (special tokens of the overflow windows not counted)."""
    return sum(len(window.ids) - sum(window.special_tokens_mask) for window in encoding.overflowing)


def preprocess_arrays(model: Any, texts: Sequence[str], prompt: str) -> dict[str, np.ndarray]:
    """``model.preprocess`` of ``texts`` as NumPy arrays (non-tensor entries kept as they are)."""
    features = model.preprocess(list(texts), prompt=prompt or None)
    return {key: value.numpy() if hasattr(value, "numpy") else value for key, value in features.items()}


class FastTokenizer(NamedTuple):
    """A :class:`JsonTokenizer` checked against a model's ``preprocess``, with the feature keys it must give and
    the entries ``preprocess`` adds that are not per-token arrays (sentence-transformers 6.2's
    ``modality: "text"``), passed on as they are."""

    tokenizer: JsonTokenizer
    keys: tuple[str, ...]
    extras: dict[str, Any]


#: fast_tokenizer's answers, per model object, then per (prompt, max_seq_length).
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fast_tokenizer(model: Any, texts: Sequence[str], prompt: str) -> FastTokenizer | None:
    """:func:`check_fast_tokenizer` once per model object, prompt and ``max_seq_length`` (a job embeds label
    names in many calls), on the texts of the first call."""
    answers = _CHECKED.setdefault(model, {})
    key = (prompt or "", int(model.max_seq_length))
    if key not in answers:
        answers[key] = check_fast_tokenizer(model, texts, prompt)
    return answers[key]


def check_fast_tokenizer(model: Any, texts: Sequence[str], prompt: str) -> FastTokenizer | None:
    """The model's tokenizer in ``tokenizers`` alone, with what its features must hold; None where it differs.

    :meth:`TokenizedTexts.features` (what the embedding loop runs) is
    compared with ``model.preprocess`` in batches of at most 32 (at least
    two) on :data:`FIXED_PROBES`,
    a text of twice ``max_seq_length`` words and :data:`SAMPLED_TEXTS` of
    ``texts`` (evenly spaced), with ``prompt``: every key and value must be
    equal.  A model whose ``preprocess`` gives arrays other than
    :data:`TOKEN_KEYS`, other entries that change between batches, or no
    fast tokenizer with a pad token, gets None (entries that stay the same,
    such as ``modality``, are passed on with every batch).
    """
    settings = tokenizer_settings(model)
    if settings is None:
        return None
    tokenizer = JsonTokenizer(settings, model.max_seq_length)
    probes = list(FIXED_PROBES) + ["Truncation. " + " ".join(f"word{i}" for i in range(2 * model.max_seq_length + 16))]
    if len(texts):
        probes += [texts[i] for i in np.unique(np.linspace(0, len(texts) - 1, SAMPLED_TEXTS).round().astype(int))]
    keys: tuple[str, ...] = ()
    extras: dict[str, Any] | None = None
    size = min(32, len(probes) // 2)  # at least two batches, so entries that change between batches show
    for start in range(0, len(probes), size):
        batch = probes[start : start + size]
        expected = preprocess_arrays(model, batch, prompt)
        arrays = {key for key, value in expected.items() if isinstance(value, np.ndarray)}
        keys = tuple(key for key in TOKEN_KEYS if key in arrays)
        others = {key: value for key, value in expected.items() if key not in arrays}
        if arrays != set(keys) or "input_ids" not in keys or "attention_mask" not in keys:
            log.info("tokenising through preprocess: it gives %s", sorted(expected))
            return None
        if extras is not None and others != extras:
            log.info("tokenising through preprocess: its %s change between batches", sorted(others))
            return None
        extras = others
        got = TokenizedTexts.encode(tokenizer, batch, prompt, keys).features(np.arange(len(batch)))
        if any(got[key].shape != expected[key].shape or not np.array_equal(got[key], expected[key]) for key in keys):
            log.info("tokenising through preprocess: the tokenizer alone tokenises differently")
            return None
    return FastTokenizer(tokenizer, keys, extras or {})
