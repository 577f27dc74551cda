"""Merge shard files into one matrix in corpus row order, refusing anything inconsistent.

The merge streams: one shard is in memory at a time and rows go straight
into the output HDF5 dataset, so peak memory is about one shard whatever
the corpus size.  Every check names the shard file at fault and how to
rebuild it, because a silently wrong matrix costs more than a stopped run.
Every shard carries its identity record (:mod:`knowledge_map.identity`:
model files' digest, prompt, max_seq_length, dtype, engine, precision,
corpus digest and size); shards whose records differ are never merged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.identity import IDENTITY_FIELDS, identity_mismatch, identity_of, short
from knowledge_map.io import atomic_path

log = logging.getLogger(__name__)


def rebuild_hint(path: str) -> str:
    return f"rebuild it with `snakemake --forcerun {path}` (or delete it and re-run)"


def read_shard(path: str, expected_model: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Embeddings, rows and attrs of one shard file, checked for internal consistency."""
    try:
        with h5py.File(path, "r") as h5:
            if "embeddings" not in h5 or "rows" not in h5:
                raise KnowledgeMapError(f"{path}: missing dataset 'embeddings' or 'rows'; {rebuild_hint(path)}")
            embeddings = h5["embeddings"][()]
            rows = h5["rows"][()]
            attrs = {key: h5.attrs[key] for key in h5.attrs}
    except (OSError, KeyError, ValueError) as exc:
        raise KnowledgeMapError(f"{path}: unreadable or truncated shard file ({exc}); {rebuild_hint(path)}") from exc
    if embeddings.ndim != 2 or rows.ndim != 1 or len(rows) != len(embeddings):
        raise KnowledgeMapError(
            f"{path}: 'embeddings' {embeddings.shape} and 'rows' {rows.shape} do not match; {rebuild_hint(path)}"
        )
    model = attrs.get("model")
    if expected_model is not None and model != expected_model:
        raise KnowledgeMapError(
            f"{path}: made with model {model!r}, not the configured {expected_model!r}; {rebuild_hint(path)}"
        )
    if not np.isfinite(embeddings).all():
        bad = int(np.flatnonzero(~np.isfinite(embeddings).all(axis=1))[0])
        raise KnowledgeMapError(f"{path}: row {int(rows[bad])} has NaN or Inf values; {rebuild_hint(path)}")
    if len(np.unique(rows)) != len(rows):
        raise KnowledgeMapError(f"{path}: duplicate row indices inside the shard; {rebuild_hint(path)}")
    return embeddings.astype(np.float32, copy=False), rows.astype(np.int64, copy=False), attrs


def contiguous_runs(sorted_rows: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``[i, j)`` of ``sorted_rows`` whose values are consecutive integers."""
    if len(sorted_rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
    edges = [0, *breaks.tolist(), len(sorted_rows)]
    return list(zip(edges[:-1], edges[1:]))


def check_identity(path: str, identity: dict[str, Any], reference: tuple[str, dict[str, Any]] | None,
                   n_rows: int, corpus_sha256: str | None) -> None:
    """Refuse a shard without a full identity record, made from another corpus, or made unlike ``reference``."""
    missing = [name for name in IDENTITY_FIELDS if identity[name] is None]
    if missing:
        raise KnowledgeMapError(
            f"{path}: no {missing[0]!r} in its identity record (made by an older knowledge-map); {rebuild_hint(path)}"
        )
    if identity["model_sha256"] == "":  # a hub model's shard made before its files were on disk (older versions)
        raise KnowledgeMapError(f"{path}: no digest of the model's files in its identity record, so nothing binds it "
                                f"to the weights that made it; {rebuild_hint(path)}")
    if corpus_sha256 is not None and identity["corpus_sha256"] != corpus_sha256:
        raise KnowledgeMapError(
            f"{path}: made from another corpus (corpus_sha256 {short(identity['corpus_sha256'])} vs the current "
            f"{short(corpus_sha256)}); {rebuild_hint(path)}"
        )
    if identity["n_rows"] != n_rows:
        raise KnowledgeMapError(
            f"{path}: made from a corpus of {identity['n_rows']} rows, not {n_rows}; {rebuild_hint(path)}"
        )
    if reference is not None:
        difference = identity_mismatch(reference[1], identity)
        if difference:
            raise KnowledgeMapError(
                f"merge: {path} and {reference[0]} were made differently ({difference}); one matrix needs one "
                f"model, prompt, length, dtype, engine and corpus: {rebuild_hint(path)}, or the other one if it is stale"
            )


def merge_shards(
    shard_paths: Sequence[str],
    out_path: str,
    ids: Sequence[str],
    titles: Sequence[str],
    model: str,
    attrs: dict[str, Any] | None = None,
    corpus_sha256: str | None = None,
) -> None:
    """Write ``embeddings`` (N x d, corpus row order), ``ids`` and ``titles`` to ``out_path``.

    Refuses (one line, naming the shard) a row outside the corpus, a row
    covered by two shards, rows no shard covers, a dimension or model that
    differs between shards, NaN/Inf values, and shards whose identity
    records differ or do not match the corpus (``corpus_sha256``, its size).
    """
    n_rows = len(ids)
    reference: tuple[str, dict[str, Any]] | None = None
    owner = np.full(n_rows, -1, dtype=np.int32)
    elapsed: list[float] = []
    compiled: list[Any] = []
    software: dict[str, list[int]] = {}  # package versions and device -> the shards made with them
    string = h5py.string_dtype("utf-8")
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", track_order=True) as out:
        dataset = None
        for index, path in enumerate(shard_paths):
            embeddings, rows, shard_attrs = read_shard(path, expected_model=model)
            identity = identity_of(shard_attrs)
            check_identity(path, identity, reference, n_rows, corpus_sha256)
            reference = reference or (path, identity)
            # Equal int8 models (identity) were judged on the same texts: one guard record for the matrix.
            guard = shard_attrs.get("int8_guard", "")
            if dataset is None:
                dim = embeddings.shape[1]
                dataset = out.create_dataset("embeddings", shape=(n_rows, dim), dtype=np.float32)
            elif embeddings.shape[1] != dataset.shape[1]:
                raise KnowledgeMapError(
                    f"{path}: dimension {embeddings.shape[1]} differs from {shard_paths[0]}'s {dataset.shape[1]}; "
                    f"{rebuild_hint(path)}"
                )
            if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
                raise KnowledgeMapError(
                    f"{path}: row indices outside the corpus's 0..{n_rows - 1}; the corpus changed since "
                    f"this shard was made: {rebuild_hint(path)}"
                )
            taken = owner[rows] >= 0
            if taken.any():
                other = shard_paths[owner[rows[taken][0]]]
                raise KnowledgeMapError(
                    f"{path}: row {int(rows[taken][0])} is also in {other} (overlapping shards); {rebuild_hint(path)}"
                )
            owner[rows] = index
            try:
                versions = json.loads(shard_attrs.get("versions") or "{}")
            except (TypeError, ValueError):
                raise KnowledgeMapError(f"{path}: attribute 'versions' is not JSON; {rebuild_hint(path)}") from None
            made_with = {"versions": versions, "device": shard_attrs.get("device")}
            software.setdefault(json.dumps(made_with, sort_keys=True), []).append(index)
            elapsed.append(float(shard_attrs.get("elapsed_seconds", float("nan"))))
            # Compiling is per shard (model.compile auto weighs each shard's work): one record each.
            try:
                compiled.append(json.loads(shard_attrs.get("compiled") or "null"))
            except (TypeError, ValueError):
                raise KnowledgeMapError(f"{path}: attribute 'compiled' is not JSON; {rebuild_hint(path)}") from None
            order = np.argsort(rows, kind="stable")
            rows, embeddings = rows[order], embeddings[order]
            for i, j in contiguous_runs(rows):
                dataset[rows[i] : rows[i] + (j - i)] = embeddings[i:j]
            log.info("merged %s: %d rows", path, len(rows))
        if dataset is None:
            raise KnowledgeMapError("merge: no shard files given")
        missing = np.flatnonzero(owner < 0)
        if len(missing):
            raise KnowledgeMapError(
                f"merge: {len(missing)} corpus rows are in no shard (first: row {int(missing[0])}); "
                f"rebuild the shards with `snakemake --forcerun {' '.join(shard_paths)}`"
            )
        out.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=string)
        out.create_dataset("titles", data=np.asarray(titles, dtype=object), dtype=string)
        for key, value in reference[1].items():
            out.attrs[key] = value
        out.attrs["int8_guard"] = guard
        out.attrs["shard_compiled"] = json.dumps(compiled if any(compiled) else None, sort_keys=True)
        out.attrs["shard_software"] = shard_software(software, shard_paths)
        out.attrs["model"] = model
        out.attrs["dim"] = dataset.shape[1]
        out.attrs["n_rows"] = n_rows
        out.attrs["n_shards"] = len(shard_paths)
        out.attrs["shard_elapsed_seconds"] = np.asarray(elapsed, dtype=np.float64)
        for key, value in (attrs or {}).items():
            out.attrs[key] = value


def shard_software(software: dict[str, list[int]], shard_paths: list[str]) -> str:
    """The merged matrix's record of what software made its shards: ``[{"shards": [...], "versions": ..., "device": ...}]``.

    Shards made on hosts with other library versions (a fleet's hosts, a
    cluster's partitions) compute the same function but not always the same
    last bits: the identity lets them merge, and this record says which
    shard came from which, with one warning line when they differ.
    """
    groups = [{"shards": shards, **json.loads(key)} for key, shards in sorted(software.items(), key=lambda kv: kv[1][0])]
    if len(groups) > 1:
        differ = sorted({name for group in groups for name, version in group["versions"].items()
                         if any(other["versions"].get(name) != version for other in groups)})
        log.warning("merge: the shards were made with %d sets of software (%s differ; shards %s): provenance.json "
                    "lists which", len(groups), ", ".join(differ) or "device",
                    " / ".join(",".join(str(i) for i in g["shards"]) for g in groups))
    return json.dumps(groups, sort_keys=True)


def read_embeddings(path: str) -> np.ndarray:
    """The merged matrix as float32 (N x d)."""
    with h5py.File(path, "r") as h5:
        return h5["embeddings"][()].astype(np.float32, copy=False)


def read_titles_ids(path: str) -> tuple[list[str], list[str]]:
    """The merged matrix's ``titles`` and ``ids``, in corpus row order."""
    with h5py.File(path, "r") as h5:
        return h5["titles"].asstr()[()].tolist(), h5["ids"].asstr()[()].tolist()


def read_attrs(path: str) -> dict[str, Any]:
    """The attributes of a shard or merged file as plain Python values (numbers, strings, lists)."""
    with h5py.File(path, "r") as h5:
        attrs = {key: h5.attrs[key] for key in h5.attrs}
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in attrs.items()}



def engine_record(attrs: dict[str, Any]) -> dict[str, Any]:
    """What computed a merged matrix, for metrics.json: engine, precision, for int8 its model and guard
    figures, and, where a shard compiled its blocks on CUDA, each shard's compile record (else None)."""
    guard = attrs.get("int8_guard") or ""
    return {
        "backend": attrs.get("backend"),
        "precision": attrs.get("precision"),
        "quantization": attrs.get("quantization") or None,
        "int8_guard": json.loads(guard) if guard else None,
        "compiled": json.loads(attrs.get("shard_compiled") or "null"),
    }
