"""What makes a shard's numbers: one identity record, written into every shard and checked by the merge.

A shard's embeddings are decided by the model's files (weights, config,
tokenizer), the prompt, ``max_seq_length``, the dtype, the engine and its
precision (for int8, also the int8 model's key: its calibration texts and
settings, :mod:`knowledge_map.quantize`), and the corpus rows it read.  :data:`IDENTITY_FIELDS` names them;
:func:`shard_identity` is the record ``embed_shard`` writes, and
:func:`identity_mismatch` is what the merge uses to refuse shards that were
made differently (one line naming the two shards and the field).

The model files' digest is also the workflow's rerun trigger for a local
model directory (:func:`model_trigger`, a ``param`` of ``embed_shard``):
replacing ``model.safetensors`` makes ``snakemake -n`` plan every shard.
Digests of unchanged files are cached by path, size, inode and mtime, so
planning a run does not re-read gigabytes of weights.  The OpenVINO cache
is keyed on the same digest (:mod:`knowledge_map.backends`), for hub models
too: a hub id is resolved to its downloaded snapshot folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from knowledge_map.io import sha256_file, write_json

#: Shard attributes that must be equal in every shard of one matrix.
IDENTITY_FIELDS = ("model", "model_sha256", "prompt", "max_seq_length", "dtype", "backend", "precision",
                   "quantization", "corpus_sha256", "n_rows", "n_shards")
#: Files in a model folder that do not change its numbers.
IGNORED_MODEL_FILES = (".gitattributes",)
IGNORED_MODEL_SUFFIXES = (".md",)


def file_sha256(path: str | os.PathLike, cache: dict[str, Any] | None = None) -> str:
    """Hex SHA-256 of a file's bytes; ``cache`` (a dict) reuses a digest while path, size, inode and mtime match."""
    stat = os.stat(path)
    key = os.path.realpath(path)
    stamp = [stat.st_size, stat.st_ino, stat.st_mtime_ns]
    if cache is not None and cache.get(key, {}).get("stamp") == stamp:
        return cache[key]["sha256"]
    digest = sha256_file(path)
    if cache is not None:
        cache[key] = {"stamp": stamp, "sha256": digest}
    return digest


def model_files(folder: str | os.PathLike) -> list[Path]:
    """The files of a model folder that decide its output, sorted (hidden folders and docs left out)."""
    root = Path(folder)
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts[:-1]) or not path.is_file():
            continue
        if path.name in IGNORED_MODEL_FILES or path.suffix in IGNORED_MODEL_SUFFIXES:
            continue
        found.append(path)
    return sorted(found)


@contextmanager
def digest_cache(cache_path: str | os.PathLike | None) -> Iterator[dict[str, Any]]:
    """The file-digest cache at ``cache_path`` (empty if absent or unreadable), written back after use.

    Jobs running side by side share it (each write is atomic); without a
    path the cache lives for the call only.
    """
    cache: dict[str, Any] = {}
    if cache_path is not None:
        try:
            cache = json.loads(Path(cache_path).read_text())
        except (OSError, ValueError):
            cache = {}
    yield cache
    if cache_path is not None:
        write_json(cache_path, cache, indent=None, concurrent=True)


def folder_sha256(folder: str | os.PathLike, cache_path: str | os.PathLike | None = None) -> str:
    """One SHA-256 over a model folder's files (relative names and contents), see :func:`model_files`."""
    digest = hashlib.sha256()
    with digest_cache(cache_path) as cache:
        for path in model_files(folder):
            digest.update(f"{path.relative_to(folder)}\0{file_sha256(path, cache)}\n".encode())
    return digest.hexdigest()


def input_trigger(path: str | os.PathLike | None, cache_path: str | os.PathLike | None = None) -> str:
    """A user input file's content digest (16 hex), a rule's rerun trigger beside Snakemake's mtime check; "" if absent.

    Snakemake reruns on an input only when it is *newer* than the outputs:
    a corpus replaced by an older file (unpacked from a tarball, ``rsync
    -a``, ``cp -p``, a backup) would go unseen and the map would describe
    the old one.  The digest is cached by path, size, inode and mtime, so a
    250,000-article file is read once, not at every invocation.
    """
    if not path or not os.path.isfile(path):
        return ""  # no such input: Snakemake names the missing file
    with digest_cache(cache_path) as cache:
        return file_sha256(path, cache)[:16]


def model_folder(name: str) -> str | None:
    """The folder a model loads from: a local directory, or a hub id's downloaded snapshot; None if neither."""
    from knowledge_map.models import is_local, resolve_model_path

    path = resolve_model_path(name)
    if is_local(path):
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(path, local_files_only=True)
    except Exception:  # noqa: BLE001 - not downloaded, no hub library, or not a hub id: unknown
        return None


def model_sha256(name: str, cache_path: str | os.PathLike | None = None) -> str:
    """Digest of the model's files (:func:`folder_sha256`), or "" when they cannot be found."""
    folder = model_folder(name)
    return folder_sha256(folder, cache_path) if folder else ""


def model_trigger(name: str, cache_path: str | os.PathLike | None = None) -> str:
    """The embed rule's rerun trigger for the model: its files' digest for a local folder, the id for a hub model.

    A hub model's files are only known once downloaded (by the first shard),
    so its trigger is the id alone; the digest recorded in each shard still
    stops the merge from mixing two snapshots.
    """
    from knowledge_map.models import is_local, resolve_model_path

    path = resolve_model_path(name)
    return folder_sha256(path, cache_path) if is_local(path) else f"hub:{name}"


def shard_identity(**fields: Any) -> dict[str, Any]:
    """The identity record of a shard: exactly :data:`IDENTITY_FIELDS`, all required."""
    missing = [name for name in IDENTITY_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"shard identity lacks {', '.join(missing)}")
    return {name: fields[name] for name in IDENTITY_FIELDS}


def _plain(value: Any) -> Any:
    """HDF5 attribute values as plain Python (numpy scalars and bytes), for comparing and printing."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def identity_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """The identity fields of a shard's attributes (a missing field is None)."""
    return {name: _plain(attrs.get(name)) for name in IDENTITY_FIELDS}


def short(value: Any) -> str:
    """A field value for a one-line message: long digests cut to 12 characters."""
    text = repr(value)
    return text[:13] + "…'" if isinstance(value, str) and len(value) == 64 else text


def identity_mismatch(reference: dict[str, Any], other: dict[str, Any]) -> str | None:
    """The first identity field that differs, as ``"field: a vs b"``; None when all are equal."""
    for name in IDENTITY_FIELDS:
        if reference.get(name) != other.get(name):
            return f"{name} {short(other.get(name))} vs {short(reference.get(name))}"
    return None


#: What decides a text's embedding, beyond the text: the fields a later embedding must share with the articles'.
TEXT_SPACE_FIELDS = ("model", "model_sha256", "prompt", "max_seq_length")


def space_mismatch(reference: dict[str, Any], other: dict[str, Any]) -> str | None:
    """The first :data:`TEXT_SPACE_FIELDS` field two embedding files' attributes disagree on, as ``"field a"`` against
    ``"field b"``; None when they share one space."""
    for name in TEXT_SPACE_FIELDS:
        mine, theirs = _plain(other.get(name)), _plain(reference.get(name))
        if mine != theirs:
            return f"{name} {short(mine)}, against {name} {short(theirs)}"
    return None


def same_space(attrs: dict[str, Any], path: str, model: str, prompt: str, max_seq_length: int) -> dict[str, Any]:
    """The articles' embedding space record, checked against the model a rule is about to embed other texts with.

    ``attrs`` are the attributes of the merged embeddings file at ``path``.
    Texts embedded by another model's files, prompt or length would be
    compared with the articles in a space they do not share: refused in one
    line naming the field.
    """
    from knowledge_map.errors import KnowledgeMapError

    now = {"model": model, "model_sha256": model_sha256(model), "prompt": prompt, "max_seq_length": max_seq_length}
    then = {name: _plain(attrs.get(name)) for name in TEXT_SPACE_FIELDS}
    for name in TEXT_SPACE_FIELDS:
        if then[name] != now[name]:
            raise KnowledgeMapError(
                f"{path} was embedded with {name} {short(then[name])}, the config now gives {short(now[name])}: "
                "re-embed (snakemake reruns embed_shard when the model's files change) or restore the model"
            )
    return now
