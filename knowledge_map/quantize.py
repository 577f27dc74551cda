"""The int8 engine: static post-training quantization, calibrated on the corpus, judged by the neighbours it keeps.

Why: CPUs without native bfloat16 but with int8 dot-product instructions
(AVX512-VNNI, AVX-VNNI, AMX-INT8) run the float32 model no faster than a
naive ``encode``; int8 matrix products run several times faster there.

How: NNCF quantizes the OpenVINO model converted from the PyTorch weights
(:mod:`knowledge_map.backends`) with ``ModelType.TRANSFORMER`` (softmax,
layer norms and the other sensitive operations stay in float32; SmoothQuant
moves activation outliers into the weights) and the ``MIXED`` preset
(symmetric weights, asymmetric activations), without bias correction: on
MiniLM it changed the guard's neighbour overlap by 0.0002 (0.9556 with it,
0.9558 without) and cost a tenth of the quantization time (23.5 -> 21.4 s
for quantizing and judging, on AVX512-VNNI without bf16), and the other
preset models (Qwen3, EmbeddingGemma) have no biases in their linear layers for it
to correct.  Activation ranges come from
the corpus's own texts: :func:`sample_rows` draws a fixed, seeded sample of
rows, the first ``calibration_texts`` of them calibrate, the next
``guard_texts`` (never seen by the calibration) judge.

The judge is the map, not a per-vector cosine: what the map and everything
computed from it depend on is which articles are each other's neighbours.
:func:`neighbour_overlap` is the mean share of each guard text's 10 nearest
guard texts under float32 that int8 keeps.  Below ``min_overlap`` the engine
falls back to float32 with a one-line warning.

The quantized model and its guard figures are cached beside the float32
conversion, keyed (:func:`quantization_key`) on everything that decides
them: the converted model's key, the calibration texts' digest, the prompt,
the settings and the library versions.  One shard quantizes while the
others wait on a lock, then all read the same files, so every shard of a
run computes with the same int8 model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge_map.io import exclusive_lock, temporary_folder, write_failure

log = logging.getLogger(__name__)

#: Neighbours compared per guard text (the map's topic and neighbour metrics use 10 too).
GUARD_NEIGHBOURS = 10
#: Seed of the row sample: the same corpus always calibrates and judges with the same texts.
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Int8Settings:
    """What the int8 engine is made and judged with (config ``model.int8``)."""

    calibration_texts: int = 300
    guard_texts: int = 500
    min_overlap: float = 0.9


@dataclass(frozen=True)
class Int8Plan:
    """The settings and the corpus texts drawn for them (:func:`sample_rows`); the prompt is added when tokenising."""

    settings: Int8Settings
    calibration: Sequence[str]
    guard: Sequence[str]
    prompt: str = ""


def sample_rows(n_rows: int, calibration_texts: int, guard_texts: int, seed: int = SAMPLE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted row samples of the corpus: ``(calibration, guard)``.

    A seeded permutation of all rows; the first ``calibration_texts`` rows
    calibrate, the next ``guard_texts`` judge.  A corpus smaller than both
    together splits what it has, the guard getting at most half.
    """
    order = np.random.default_rng(seed).permutation(n_rows)
    guard = min(guard_texts, n_rows // 2)
    calibration = min(calibration_texts, n_rows - guard)
    return np.sort(order[:calibration]), np.sort(order[calibration : calibration + guard])


def plan_from_texts(texts: Sequence[str], settings: Int8Settings, prompt: str = "") -> Int8Plan:
    """The int8 plan of a corpus given as its embedded texts (:func:`sample_rows` picks them)."""
    calibration, guard = sample_rows(len(texts), settings.calibration_texts, settings.guard_texts)
    return Int8Plan(settings, [texts[i] for i in calibration], [texts[i] for i in guard], prompt)


def corpus_plan(corpus_path: str, settings: Int8Settings, prompt: str = "") -> Int8Plan:
    """The corpus texts the int8 engine calibrates and is judged on, as they are embedded (:func:`sample_rows`).

    Reads only the sampled rows, one row group at a time
    (:func:`knowledge_map.corpus.read_corpus_rows`).
    """
    from knowledge_map.corpus import corpus_row_count, document_text, read_corpus_rows

    calibration, guard = sample_rows(corpus_row_count(corpus_path), settings.calibration_texts, settings.guard_texts)
    table = read_corpus_rows(corpus_path, np.concatenate([calibration, guard]), columns=("title", "text"))
    texts = [document_text(t, x) for t, x in zip(table.column("title").to_pylist(), table.column("text").to_pylist())]
    return Int8Plan(settings, texts[: len(calibration)], texts[len(calibration) :], prompt)


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts (each length-prefixed, so no two lists collide by concatenation)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def quantization_record(converted_key: str, plan: Int8Plan, max_seq_length: int) -> dict[str, Any]:
    """Everything that decides the int8 model and its guard figures."""
    from knowledge_map.provenance import package_versions

    return {
        "converted": converted_key,
        "prompt": plan.prompt,
        "calibration_sha256": texts_sha256(plan.calibration),
        "guard_sha256": texts_sha256(plan.guard),
        "max_seq_length": max_seq_length,
        "settings": {
            "calibration_texts": len(plan.calibration),
            "guard_texts": len(plan.guard),
            "preset": "mixed",
            "model_type": "transformer",
            "bias_correction": False,
        },
        "versions": package_versions(("openvino", "nncf")),
    }


def quantization_key(record: dict[str, Any]) -> str:
    """Hex key of an int8 model: the digest of :func:`quantization_record`."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


def nearest(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` most cosine-similar other rows (rows are unit length), most similar first."""
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(embeddings) - 1)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def neighbour_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = GUARD_NEIGHBOURS) -> float:
    """Mean share of each row's ``k`` nearest rows under ``reference`` that ``candidate`` keeps.

    ``overlap = mean_i |N_k^ref(i) ∩ N_k^cand(i)| / k`` over unit-length
    rows, neighbours by cosine among the same rows.  1.0: every neighbour
    list is unchanged (in any order).
    """
    if len(reference) < 2:
        return 1.0
    a, b = nearest(reference, k), nearest(candidate, k)
    kept = [len(set(x).intersection(y)) for x, y in zip(a.tolist(), b.tolist())]
    return float(np.mean(kept) / a.shape[1])


def guard_figures(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """What the guard measures: neighbour overlap and cosine to float32 (min and mean) on the guard texts."""
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    candidate = candidate / np.linalg.norm(candidate, axis=1, keepdims=True)
    cosine = (reference * candidate).sum(axis=1)
    return {
        "texts": len(reference),
        "neighbours": min(GUARD_NEIGHBOURS, max(len(reference) - 1, 0)),
        "neighbour_overlap": round(neighbour_overlap(reference, candidate), 4),
        "min_cosine": round(float(cosine.min()), 5) if len(cosine) else None,
        "mean_cosine": round(float(cosine.mean()), 5) if len(cosine) else None,
    }


def guard_verdict(figures: dict[str, Any], min_overlap: float) -> dict[str, Any]:
    """The figures with the threshold and whether they pass it (decided on every use, so a new threshold needs no new model)."""
    return {**figures, "min_overlap": min_overlap, "passed": bool(figures["neighbour_overlap"] >= min_overlap)}


def quantize(converted: Any, features: Callable[[Sequence[str]], dict[str, np.ndarray]], texts: Sequence[str]) -> Any:
    """NNCF static int8 quantization of an OpenVINO model, calibrated one text at a time (no padding)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    dataset = nncf.Dataset([[text] for text in texts], features)
    return nncf.quantize(
        converted,
        dataset,
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(texts),
        advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
    )


def quantized_model(
    record: dict[str, Any],
    cache_dir: str | None,
    make: Callable[[], Any],
    judge: Callable[[Any], dict[str, Any]],
) -> tuple[Any, dict[str, Any]]:
    """The int8 model and its guard figures, from ``cache_dir`` or made, judged and cached atomically.

    ``make()`` returns the quantized model and ``judge(model)`` its guard
    measurements (:func:`guard_figures`), computed on the model as read back from
    disk: the shard that quantizes and the shards that read the cache then
    compile the same graph.  The entry is a folder named by
    :func:`quantization_key` holding ``model.xml/.bin``, ``identity.json``
    (``record``, compared on every load) and ``guard.json``; the verdict
    (:func:`guard_verdict`) is the caller's, so a model that fails is cached
    too and the other shards fall back without quantizing again.
    Without ``cache_dir`` nothing is cached.
    """
    import openvino as ov

    from knowledge_map.errors import KnowledgeMapError

    if not cache_dir:
        model = make()
        return model, judge(model)
    key = quantization_key(record)
    folder = os.path.join(cache_dir, f"int8-{key}")
    with exclusive_lock(os.path.join(cache_dir, f".int8-{key}.lock")):
        if not os.path.exists(os.path.join(folder, "guard.json")):
            tmp = temporary_folder(cache_dir)
            try:
                quantized = make()
                try:
                    ov.save_model(quantized, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
                except Exception as error:  # noqa: BLE001 - a full disk comes as a bare RuntimeError from OpenVINO
                    raise write_failure(cache_dir, "the int8 model", error) from error
                guard = judge(ov.Core().read_model(os.path.join(tmp, "model.xml")))
                for name, data in (("identity.json", record), ("guard.json", guard)):
                    with open(os.path.join(tmp, name), "w", encoding="utf-8") as handle:
                        json.dump(data, handle, sort_keys=True)
                os.chmod(tmp, 0o755)
                os.replace(tmp, folder)
                log.info("cached the int8 model in %s", folder)
            except (OSError, KnowledgeMapError) as error:
                # A shard on another host (a cache on a file system without
                # flock) may have cached it first; the record check below still holds.
                if not os.path.exists(os.path.join(folder, "guard.json")):
                    if isinstance(error, OSError):
                        raise write_failure(cache_dir, "the int8 model", error) from error
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        try:
            with open(os.path.join(folder, "identity.json"), encoding="utf-8") as handle:
                stored = json.load(handle)
            with open(os.path.join(folder, "guard.json"), encoding="utf-8") as handle:
                guard = json.load(handle)
        except (OSError, ValueError) as error:
            raise KnowledgeMapError(f"{folder}: unreadable int8 cache entry ({error}); delete the folder and re-run") from error
        if stored != record:
            raise KnowledgeMapError(
                f"{folder}: this int8 cache entry was not made from this model and corpus sample; delete it and re-run"
            )
        return ov.Core().read_model(os.path.join(folder, "model.xml")), guard
