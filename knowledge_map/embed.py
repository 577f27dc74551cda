"""Embed a slice of the corpus into a shard file.

Texts are embedded in order of decreasing token length so each batch holds
texts of similar length (little padding), then put back in corpus order.
Batches are capped both by count (``batch_size``) and by padded tokens
(``batch_size * max_seq_length``), so a batch of long texts cannot use more
memory than a full batch of the longest allowed texts.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import h5py
import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path

log = logging.getLogger(__name__)


def token_lengths(model: Any, texts: Sequence[str]) -> np.ndarray:
    """Token count of each text after truncation to the model's max_seq_length."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    tokenizer = model.tokenizer
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=model.max_seq_length)
    return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))


def plan_batches(
    lengths: np.ndarray, batch_size: int, token_budget: int, multiple: int = 1, cap: int | None = None
) -> list[np.ndarray]:
    """Group text indices into batches, longest first, each within both caps.

    A batch's padded size is ``len(batch) * longest``; since texts are sorted
    by decreasing length, the first text of a batch is its longest.  With
    ``multiple`` > 1 the longest is first rounded up as the engine pads it
    (:func:`knowledge_map.backends.bucket_length`, at most ``cap``).  The
    order inside the sort is stable, so equal inputs give equal batches.
    """
    from knowledge_map.backends import bucket_length

    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = bucket_length(int(lengths[order[start]]), multiple, cap)
        size = max(1, min(batch_size, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32 (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def embed_texts(
    model: Any,
    texts: Sequence[str],
    batch_size: int,
    prompt: str = "",
    progress: Callable[[int, int], None] | None = None,
    encoder: Any = None,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Embed ``texts`` into L2-normalised float32 rows, in input order.

    Batches follow :func:`plan_batches` (longest first, at most
    ``batch_size`` texts and ``batch_size * max_seq_length`` padded tokens).
    A background thread tokenises batch i+1 while ``encoder`` (default: the
    model's PyTorch forward pass, see :mod:`knowledge_map.backends`) runs
    batch i.  Outputs stay on the encoder's device until the end: the loop
    never waits for a GPU, one copy to the host at the end does.
    ``progress(done, total)`` is called after every batch is queued.
    ``lengths`` (:func:`token_lengths` of ``texts``) saves tokenising twice
    when the caller has them.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from knowledge_map.backends import TorchEncoder

    dim = model.get_embedding_dimension()
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    encoder = encoder or TorchEncoder(model)
    # The prompt costs the same tokens in every text, so sort on the text alone.
    if lengths is None:
        lengths = token_lengths(model, texts)
    multiple = getattr(encoder, "length_multiple", 1)
    batches = plan_batches(lengths, batch_size, batch_size * model.max_seq_length, multiple, model.max_seq_length)

    def prepare(batch: np.ndarray):
        index = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.int64))
        return encoder.prepare([texts[i] for i in batch], prompt), index

    out = None
    done = 0
    with ThreadPoolExecutor(max_workers=1) as pool, encoder.context():
        pending = pool.submit(prepare, batches[0])
        for number in range(len(batches)):
            features, index = pending.result()
            if number + 1 < len(batches):
                pending = pool.submit(prepare, batches[number + 1])
            vectors = encoder(features)
            if out is None:
                out = torch.zeros((len(texts), vectors.shape[1]), dtype=torch.float32, device=vectors.device)
            out[index.to(vectors.device, non_blocking=True)] = vectors
            done += len(index)
            if progress is not None:
                progress(done, len(texts))
    return l2_normalise(out.cpu().numpy())


class ProgressLog:
    """Log ``done/total, rate, ETA`` lines at most every ``interval`` seconds.

    The lines go to the rule's log file, where ``knowledge_map.cluster.progress``
    (and a person with ``tail -f``) reads them: the log is the only record
    of a running shard's progress.
    """

    def __init__(self, label: str, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.label, self.interval, self.clock = label, interval, clock
        self.start = self.last = clock()

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        log.info("%s: %d/%d articles, %.1f articles/s, ETA %.0f s", self.label, done, total, rate, eta)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device running out of memory (CUDA's OutOfMemoryError, MPS's RuntimeError)."""
    kind = type(error).__name__
    return kind == "OutOfMemoryError" or isinstance(error, MemoryError) or "out of memory" in str(error).lower()


def device_name(device: str) -> str:
    """The CUDA device's name (for its peak, :mod:`knowledge_map.flops`), or ``device`` itself elsewhere."""
    if device != "cuda":
        return device
    import torch

    return torch.cuda.get_device_name()


def placement() -> str:
    """Where this job runs: host, SLURM job id and visible GPUs, as one log field list.

    ``knowledge_map.cluster.progress`` shows it per shard, and the cluster tests
    check from it that every job got its own GPU.  ``KNOWLEDGE_MAP_HOST`` is
    the ssh alias the tensor profile sent the job to.
    """
    host = os.environ.get("KNOWLEDGE_MAP_HOST") or socket.gethostname()
    slurm = os.environ.get("SLURM_JOB_ID", "-")
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    return f"placement host={host} slurm_job={slurm} CUDA_VISIBLE_DEVICES={gpus}"


def write_shard(path: str, embeddings: np.ndarray, rows: np.ndarray, attrs: dict[str, Any]) -> None:
    """Write a shard file atomically: ``embeddings`` (n x d float32), ``rows`` (int64), attrs.

    A shard that exists is complete: it is renamed into place only after
    the HDF5 file is closed.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            h5.create_dataset("embeddings", data=np.asarray(embeddings, dtype=np.float32))
            h5.create_dataset("rows", data=np.asarray(rows, dtype=np.int64))
            for key, value in attrs.items():
                h5.attrs[key] = value


def embed_shard(
    corpus_path: str,
    shard: int,
    n_shards: int,
    out_path: str,
    model_name: str,
    max_seq_length: int,
    batch_size: int,
    device: str = "auto",
    dtype: str = "auto",
    prompt: str | None = None,
    backend: str = "auto",
    cpu_precision: str = "auto",
    cache_dir: str | None = None,
    int8: dict[str, Any] | None = None,
    compile: Any = "auto",
) -> dict[str, Any]:
    """Embed rows ``shard_bounds(n, n_shards, shard)`` of the corpus into ``out_path``.

    Reads only the shard's slice of the corpus.  ``backend`` and
    ``cpu_precision`` pick the engine (:func:`knowledge_map.models.resolve_backend`);
    an OpenVINO conversion is cached in ``cache_dir``, and so is an int8
    model (``int8``: config ``model.int8``, :mod:`knowledge_map.quantize`),
    calibrated on the same sample of the whole corpus in every shard.
    ``compile`` (config ``model.compile``) compiles the transformer's blocks
    on CUDA (:mod:`knowledge_map.gpu`), for ``auto`` when the shard's work
    repays the compile time.  Returns the
    attributes written to the shard file: its identity record
    (:mod:`knowledge_map.identity`, checked by the merge), the engine's
    thread count, placement and timings.
    """
    import json

    import torch

    from knowledge_map.backends import make_encoder
    from knowledge_map.corpus import corpus_row_count, document_text, read_corpus_slice, shard_bounds
    from knowledge_map.engine_restart import EngineRestart, record_fields
    from knowledge_map.flops import encoder_flops, model_shape
    from knowledge_map.gpu import resolve_compile
    from knowledge_map.identity import file_sha256, model_sha256, shard_identity
    from knowledge_map.models import (
        attention_of,
        load_model,
        resolve_backend,
        resolve_cpu_precision,
        resolve_device,
        resolve_dtype,
        resolve_model_path,
        resolve_prompt,
        weights_sha256,
    )
    from knowledge_map.provenance import package_versions
    from knowledge_map.quantize import Int8Settings, corpus_plan

    started = time.monotonic()
    n_rows = corpus_row_count(corpus_path)
    start, stop = shard_bounds(n_rows, n_shards, shard)
    table = read_corpus_slice(corpus_path, start, stop, columns=("row", "title", "text"))
    texts = [document_text(t, x) for t, x in zip(table.column("title").to_pylist(), table.column("text").to_pylist())]
    device = resolve_device(device)
    dtype = resolve_dtype(model_name, dtype, device)
    prompt = resolve_prompt(model_name, prompt)
    log.info("shard %d/%d: rows %d..%d (%d articles) on %s in %s", shard, n_shards, start, stop, len(texts), device, dtype)
    log.info("shard %d: %s", shard, placement())
    backend = resolve_backend(backend, device)
    # The CPU precision only matters on the CPU; it is checked everywhere.
    cpu_precision = resolve_cpu_precision(cpu_precision, backend)
    if device != "cpu":
        cpu_precision = "float32"
    sha = weights_sha256(resolve_model_path(model_name)) or ""
    # Every file of the model (weights, config, tokenizer): the shard's and the OpenVINO cache's identity.
    files_sha = model_sha256(model_name)
    corpus_sha = file_sha256(corpus_path)
    plan = None
    if backend == "openvino" and cpu_precision == "int8":
        plan = corpus_plan(corpus_path, Int8Settings(**(int8 or {})), prompt)
    restart = None
    if backend == "openvino" and cache_dir and files_sha:
        restart = EngineRestart(cache_dir, corpus_path, prompt, record_fields(files_sha, corpus_sha, max_seq_length, prompt))
    model, encoder = restart.start(cpu_precision, torch.get_num_threads(), plan) if restart else (None, None)
    if encoder is None:
        model = load_model(model_name, device, dtype, max_seq_length)
    # Sorted by these (embed_texts) and, on CUDA, the shard's FLOP that decide whether compiling pays.
    lengths = token_lengths(model, texts)
    flops = encoder_flops(lengths, *model_shape(model)) if device == "cuda" else 0.0
    compiling = resolve_compile(compile, device, backend, flops, device_name(device))
    if encoder is None:
        encoder = make_encoder(model, device, backend, cpu_precision, model_sha256=files_sha, cache_dir=cache_dir,
                               int8=plan, compile=compiling, prompt=prompt)
        if restart:
            restart.record(model, encoder)
    else:
        log.info("shard %d: restarted the engine from %s (no PyTorch model loaded)", shard, restart.path)
    engine = encoder.describe()
    quantization = getattr(encoder, "int8", None)
    log.info("shard %d: %s backend, %s precision, %s threads", shard, *engine.values())
    if compiling:
        log.info("shard %d: compiled %s", shard, encoder.record())
    try:
        embeddings = embed_texts(model, texts, batch_size, prompt, ProgressLog(f"shard {shard}"), encoder, lengths)
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        raise KnowledgeMapError(
            f"shard {shard}: out of {device} memory at batch_size {batch_size}; Snakemake retries halve it "
            f"(--retries); if every retry fails, lower model.batch_size or model.max_seq_length"
        ) from error
    identity = shard_identity(
        model=model_name,
        model_sha256=files_sha,
        prompt=prompt,
        max_seq_length=max_seq_length,
        dtype=dtype,
        backend=engine["backend"],
        precision=engine["precision"],
        quantization=quantization["model"] if quantization and quantization["used"] else "",
        corpus_sha256=corpus_sha,
        n_rows=n_rows,
        n_shards=n_shards,
    )
    attrs = {
        **identity,
        "model_path": resolve_model_path(model_name),
        "weights_sha256": sha,
        "dim": embeddings.shape[1],
        "device": device,
        "threads": int(engine["threads"]),
        "attention": restart.attention if restart and restart.started else attention_of(model),
        "batch_size": batch_size,
        "int8_guard": json.dumps(quantization["guard"], sort_keys=True) if quantization else "",
        # Compiled blocks compute the same function (checked, cosine >= 0.999): not part of the identity.
        "compiled": json.dumps(encoder.record(), sort_keys=True) if compiling else "",
        "shard": shard,
        "row_start": start,
        "row_stop": stop,
        "versions": json.dumps(package_versions(), sort_keys=True),
        "elapsed_seconds": round(time.monotonic() - started, 3),
    }
    write_shard(out_path, embeddings, np.asarray(table.column("row").to_numpy(), dtype=np.int64), attrs)
    log.info("shard %d: wrote %s (%d x %d) in %.1f s", shard, out_path, *embeddings.shape, attrs["elapsed_seconds"])
    return attrs


def text_embedder(
    model_name: str, max_seq_length: int, prompt: str, backend: str, corpus_path: str | None, cache_dir: str | None,
    threads: int | None = None,
) -> Callable[[Sequence[str]], np.ndarray]:
    """Embed short texts (questions, label names) on the CPU in float32, into the articles' model space.

    The engine is the CPU's for ``backend`` (config ``model.backend``; auto
    is OpenVINO): OpenVINO float32, started from the engine record when one
    holds (:mod:`knowledge_map.engine_restart`, no PyTorch model loaded), else
    built in full and recorded for the next job (with no ``cache_dir`` or
    ``corpus_path``, converted in memory); or PyTorch float32, also where
    OpenVINO cannot run the model (its conversion fails or disagrees with
    PyTorch: warned once per job, and recorded so later jobs do not try).  The
    same settings always give the same engine, wherever the rule runs.
    ``threads`` defaults to PyTorch's own count (the cores the process may
    use), as the PyTorch model these rules loaded before used: label names
    are embedded while ``knowledge_lists``, a short single-threaded job,
    runs beside them, and on 2 cores one thread took 7.4 s for 5,000 names,
    two 4.1 s.
    """
    import torch

    from knowledge_map.backends import OpenVINOEncoder
    from knowledge_map.engine_restart import EngineRestart, record_fields
    from knowledge_map.errors import ConversionError
    from knowledge_map.identity import file_sha256, model_sha256
    from knowledge_map.models import load_model, resolve_backend

    threads = threads or torch.get_num_threads()
    files_sha = model_sha256(model_name)
    model = encoder = restart = None
    if resolve_backend(backend, "cpu") == "openvino":
        if cache_dir and files_sha and corpus_path:
            fields = record_fields(files_sha, file_sha256(corpus_path), max_seq_length, prompt)
            restart = EngineRestart(cache_dir, corpus_path, prompt, fields)
            model, encoder = restart.start("float32", threads)
        if encoder is None and not (restart and restart.failure):
            model = load_model(model_name, "cpu", "float32", max_seq_length)
            try:
                encoder = OpenVINOEncoder(model, "float32", threads, files_sha, cache_dir if files_sha else None,
                                          prompt=prompt)
            except ConversionError as error:
                reason = str(error)
                if restart:
                    restart.record_failure(reason)
                log.warning("%s: OpenVINO cannot run this model (%s); short texts are embedded by PyTorch float32",
                            model_name, reason)
            else:
                if restart:
                    restart.record(model, encoder)
        elif restart and restart.failure:
            log.warning("%s: OpenVINO cannot run this model (recorded in %s: %s); short texts are embedded by "
                        "PyTorch float32", model_name, restart.path, restart.failure)
    if encoder is None and model is None:
        model = load_model(model_name, "cpu", "float32", max_seq_length)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(model, list(texts), 64, prompt, encoder=encoder)

    return embed
