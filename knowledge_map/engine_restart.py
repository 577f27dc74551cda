"""Starting the OpenVINO engine without loading sentence-transformers.

Why: on a 2-core CPU each job that embeds (the four shards of the embedded
default, the questions, the label names) spent about 3 s importing
sentence-transformers (and with it much of transformers) and 1 s more
loading and checking the model, against 10 s of embedding 2,508 texts in
int8 (docs/embedding.md, "Starting the engine").  PyTorch's model is needed for three
things only: converting it to OpenVINO, checking the conversion against
PyTorch, and tokenising.  Once one job has done them, the converted model is
in the OpenVINO cache and the rest fits in a record.

How: the job that builds the engine in full writes an *engine record* beside
the cache, keyed on everything tokens and conversion depend on
(:func:`record_fields`: the model's files, the corpus, ``max_seq_length``,
the prompt, the library versions).  It holds the tokenizer sentence-
transformers ran, as the ``tokenizers`` library's JSON (with any normaliser
sentence-transformers added, such as ``do_lower_case``), the converted
model's cache record, and the float32 engine's embeddings of
:data:`FIXED_PROBES`.  It is written only when that tokenizer alone gives
exactly the ``input_ids`` and ``attention_mask`` that
``SentenceTransformer.preprocess`` gives on :func:`probe_texts` (the fixed
probes plus a seeded corpus sample), with the prompt.  A later job tokenises
the probes again and must get the same digest, reads the converted model,
and its float32 engine must reproduce the recorded probe embeddings
(cosine >= :data:`knowledge_map.backends.CONVERSION_MIN_COSINE`, the
conversion check's own bar).  Then it goes on exactly as a full build does
(bfloat16; int8 quantized and judged, or read from its cache).  Any miss
and it builds in full, so a restarted engine never computes anything a
fully built one would not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge_map.models import attention_of
from knowledge_map.tokens import FIXED_PROBES, JsonTokenizer, tokenizer_settings

log = logging.getLogger(__name__)

#: Version of the record's layout; a change makes old records unused (never misread).
RECORD_FORMAT = 1
#: Corpus texts tokenised by both tokenizers before a record is written: PROBE_SLICES runs of PROBE_RUN rows
#: spread over the corpus (each run one row group, so a shard never reads the whole corpus for them).
PROBE_SLICES = 8
PROBE_RUN = 32
#: Libraries whose versions decide the tokens and the engine.
RECORD_PACKAGES = ("openvino", "nncf", "tokenizers", "transformers", "sentence-transformers", "torch")


def record_fields(model_sha256: str, corpus_sha256: str, max_seq_length: int, prompt: str) -> dict[str, Any]:
    """Everything the tokens and the converted model depend on: what a restart must share with the record's maker."""
    from knowledge_map.provenance import package_versions

    return {
        "format": RECORD_FORMAT,
        "model_sha256": model_sha256,
        "corpus_sha256": corpus_sha256,
        "max_seq_length": int(max_seq_length),
        "prompt": prompt or "",
        "versions": package_versions(RECORD_PACKAGES),
    }


def record_path(cache_dir: str, fields: dict[str, Any]) -> str:
    """``cache_dir/engine-<digest of fields>.json``."""
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    return os.path.join(cache_dir, f"engine-{key}.json")


def probe_texts(corpus_path: str, max_seq_length: int) -> list[str]:
    """The texts whose tokens must agree: :data:`FIXED_PROBES`, one text of twice ``max_seq_length`` words
    (truncation at any length), and runs of corpus texts spread over the corpus, as they are embedded."""
    from knowledge_map.corpus import corpus_row_count, document_text, read_corpus_slice

    n_rows = corpus_row_count(corpus_path)
    starts = sorted({int(i * n_rows / PROBE_SLICES) for i in range(PROBE_SLICES)})
    texts = list(FIXED_PROBES) + ["Truncation. " + " ".join(f"word{i}" for i in range(2 * int(max_seq_length) + 16))]
    for start in starts:
        table = read_corpus_slice(corpus_path, start, min(start + PROBE_RUN, n_rows), columns=("title", "text"))
        texts += [document_text(t, x) for t, x in zip(table.column("title").to_pylist(), table.column("text").to_pylist())]
    return texts


def features_sha256(input_ids: np.ndarray, attention_mask: np.ndarray) -> str:
    """Digest of a batch's token ids and mask (shapes included)."""
    digest = hashlib.sha256()
    for array in (input_ids, attention_mask):
        array = np.ascontiguousarray(array, dtype=np.int64)
        digest.update(repr(array.shape).encode() + array.tobytes())
    return digest.hexdigest()


class TokenizerOnlyModel:
    """What the OpenVINO engine and the embedding loop use of a SentenceTransformer, from a record.

    ``preprocess`` returns torch tensors like the model's own, so
    :func:`knowledge_map.embed.embed_texts` and
    :class:`knowledge_map.backends.OpenVINOEncoder` run unchanged.
    """

    def __init__(self, tokenizer: JsonTokenizer, max_seq_length: int, dimension: int):
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.dimension = int(dimension)

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def features(self, texts: Sequence[str], prompt: str | None = None) -> dict[str, np.ndarray]:
        """``input_ids`` and ``attention_mask`` of ``prompt + text`` for each text (the prompt joined as
        sentence-transformers joins it), as NumPy arrays."""
        return self.tokenizer.features([(prompt or "") + text for text in texts])

    def preprocess(self, texts: Sequence[str], prompt: str | None = None) -> dict[str, Any]:
        import torch

        return {name: torch.from_numpy(array) for name, array in self.features(texts, prompt).items()}


def probe_features_sha256(tokenize: Any, texts: Sequence[str], prompt: str) -> str:
    """Digest of the probes tokenised in batches of 32 (``tokenize(texts, prompt)`` -> features)."""
    digest = hashlib.sha256()
    for start in range(0, len(texts), 32):
        features = tokenize(texts[start : start + 32], prompt)
        ids = features["input_ids"]
        mask = features["attention_mask"]
        digest.update(features_sha256(np.asarray(ids), np.asarray(mask)).encode())
    return digest.hexdigest()


def write_engine_record(
    path: str, model: Any, encoder: Any, probes: Sequence[str], prompt: str,
    converted_identity: dict[str, Any], fields: dict[str, Any],
) -> bool:
    """Record a fully built engine for restarts; False (nothing written) when its tokenizer cannot be reproduced."""
    from knowledge_map.io import write_json

    settings = tokenizer_settings(model)
    if settings is None:
        log.info("no engine record: the model has no fast tokenizer with a pad token")
        return False
    light = TokenizerOnlyModel(JsonTokenizer(settings, model.max_seq_length), model.max_seq_length,
                               model.get_embedding_dimension())

    def full(texts, prompt):
        features = model.preprocess(list(texts), prompt=prompt or None)
        return {name: features[name].numpy() for name in ("input_ids", "attention_mask")}

    digest = probe_features_sha256(full, probes, prompt)
    if probe_features_sha256(light.features, probes, prompt) != digest:
        log.info("no engine record: the tokenizer alone does not tokenise as the model's preprocessing does")
        return False
    embeddings = encoder.probe(FIXED_PROBES, prompt)
    if not np.isfinite(embeddings).all():
        log.info("no engine record: the float32 engine gives non-finite embeddings for a probe text")
        return False
    record = {
        "fields": fields,
        "converted": converted_identity,
        "dimension": model.get_embedding_dimension(),
        "attention": attention_of(model),
        "tokenizer": settings,
        "probe_sha256": digest,
        "probe_embeddings": embeddings.tolist(),
    }
    write_json(path, record, indent=None, concurrent=True)
    return True


def read_engine_record(path: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The record at ``path`` if it is readable and made for exactly ``fields``, else None (logged)."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s: unreadable engine record (%s); building the engine in full", path, error)
        return None
    if not isinstance(record, dict) or record.get("fields") != fields:
        log.warning("%s: engine record made for other settings; building the engine in full", path)
        return None
    return record


def restart_model(record: dict[str, Any], max_seq_length: int, probes: Sequence[str],
                  prompt: str) -> TokenizerOnlyModel | None:
    """The tokenizer-only model of ``record``, or None when its probes no longer tokenise to the recorded digest."""
    try:
        model = TokenizerOnlyModel(JsonTokenizer(record["tokenizer"], max_seq_length), max_seq_length,
                                   record["dimension"])
    except Exception as error:  # noqa: BLE001 - a damaged record: tokenizers raises its own exception type
        log.warning("engine record: its tokenizer does not load (%s); building the engine in full",
                    " ".join(str(error).split())[:200])
        return None

    if probe_features_sha256(model.features, probes, prompt) != record.get("probe_sha256"):
        log.warning("engine record: the probes tokenise differently now; building the engine in full")
        return None
    return model


class EngineRestart:
    """One job's use of an engine record: start from it, or record the engine it built in full (or its failure)."""

    def __init__(self, cache_dir: str, corpus_path: str, prompt: str, fields: dict[str, Any]):
        self.path = record_path(cache_dir, fields)
        self.cache_dir = cache_dir
        self.corpus_path = corpus_path
        self.prompt = prompt or ""
        self.fields = fields
        self.started = False
        self.attention = ""
        #: Why OpenVINO cannot run this model, when a job found out and recorded it (:meth:`record_failure`).
        self.failure = ""
        self._probes: list[str] | None = None

    def probes(self) -> list[str]:
        if self._probes is None:
            self._probes = probe_texts(self.corpus_path, self.fields["max_seq_length"])
        return self._probes

    def start(self, precision: str, threads: int, plan: Any = None) -> tuple[Any, Any]:
        """``(tokenizer-only model, engine in precision)`` from the record, or ``(None, None)`` to build in full.

        ``plan`` is int8's :class:`knowledge_map.quantize.Int8Plan`.
        """
        from knowledge_map.backends import OpenVINOEncoder

        record = read_engine_record(self.path, self.fields)
        if record is None:
            return None, None
        if "failure" in record:
            self.failure = str(record["failure"])
            log.info("%s: OpenVINO could not run this model in an earlier job (%s)", self.path, self.failure)
            return None, None
        model = restart_model(record, self.fields["max_seq_length"], self.probes(), self.prompt)
        encoder = OpenVINOEncoder.restart(model, record, precision, threads, self.cache_dir, plan, self.prompt) if model else None
        if encoder is None:
            return None, None
        self.started, self.attention = True, str(record.get("attention", ""))
        return model, encoder

    def record(self, model: Any, encoder: Any) -> None:
        """Write the record of an engine built in full (replacing one that could not be used)."""
        from knowledge_map.backends import openvino_cache_record

        converted = openvino_cache_record(model, self.fields["model_sha256"])
        try:
            written = write_engine_record(self.path, model, encoder, self.probes(), self.prompt, converted, self.fields)
        except Exception as error:  # noqa: BLE001 - a record only saves later jobs time: it never fails this job
            log.warning("%s: engine record not written (%s: %s)", self.path, type(error).__name__,
                        " ".join(str(error).split())[:200])
            return
        if written:
            log.info("recorded the engine in %s: later jobs start it without PyTorch's model", self.path)

    def record_failure(self, reason: str) -> None:
        """Record that building the engine failed (``reason``, one line), so later jobs need not try again.

        Only the short-text embedder reads it (it then uses PyTorch); a shard
        builds in full and fails as the first did, with the same message.
        """
        from knowledge_map.io import write_json

        try:
            write_json(self.path, {"fields": self.fields, "failure": reason}, indent=None, concurrent=True)
        except OSError as error:
            log.warning("%s: engine record not written (%s)", self.path, error)
