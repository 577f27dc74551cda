"""Embed a slice of the corpus into a shard file.

Texts are embedded in chunks, each in order of decreasing token length so
each batch holds texts of similar length (little padding), then put back
in corpus order.
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


#: Texts :func:`estimated_flops` tokenises (evenly spaced over the job).
FLOP_SAMPLE = 1024


def estimated_flops(model: Any, texts: Sequence[str]) -> float:
    """The encoder's FLOP for ``texts``, from the token lengths of at most :data:`FLOP_SAMPLE` of them.

    Only :func:`knowledge_map.gpu.resolve_compile` uses it, to tell a shard
    worth compiling from one that is not (a factor of several apart); the
    embedding loop tokenises every text once itself.  Tokenising all of a
    shard's texts for this figure cost 0.46 s per 2,048 texts of 512 tokens
    on an H200's host, before the GPU started.
    """
    from knowledge_map.flops import encoder_flops, model_shape

    if not texts:
        return 0.0
    sample = [texts[i] for i in np.unique(np.linspace(0, len(texts) - 1, FLOP_SAMPLE).round().astype(int))]
    return encoder_flops(token_lengths(model, sample), *model_shape(model)) * len(texts) / len(sample)


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


#: Texts tokenised and planned together: the first chunk is FIRST_CHUNK_BATCHES batches (the engine starts
#: soon), the next ones CHUNK_TEXTS texts, each tokenised in the background while the engine runs the one before.
FIRST_CHUNK_BATCHES = 4
CHUNK_TEXTS = 4096
#: At most this many padded tokens per chunk (4,096 texts of 512): a chunk's features are held, pinned on
#: CUDA, until the engine has run it, so a long-context model gets chunks of fewer texts.
CHUNK_TOKENS = 4096 * 512


def text_chunks(n: int, batch_size: int, max_seq_length: int = 512) -> list[np.ndarray]:
    """Row ranges of ``n`` texts: one of ``FIRST_CHUNK_BATCHES * batch_size``, then of :data:`CHUNK_TEXTS`
    (fewer where ``max_seq_length`` would make a chunk more than :data:`CHUNK_TOKENS` tokens, never under
    one batch)."""
    size = max(batch_size, min(CHUNK_TEXTS, CHUNK_TOKENS // max(1, max_seq_length)))
    bounds = [0, min(n, FIRST_CHUNK_BATCHES * batch_size)]
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] + size))
    return [np.arange(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def embed_texts(
    model: Any,
    texts: Sequence[str],
    batch_size: int,
    prompt: str = "",
    progress: Callable[[int, int], None] | None = None,
    encoder: Any = None,
) -> np.ndarray:
    """Embed ``texts`` into L2-normalised float32 rows, in input order.

    Texts go in chunks (:func:`text_chunks`).  Each chunk is tokenised
    once, by the tokenizer alone where it gives exactly what
    ``SentenceTransformer.preprocess`` gives (:func:`knowledge_map.tokens.fast_tokenizer`;
    else through ``preprocess``, batch by batch), then cut into batches by
    :func:`plan_batches` (longest first, at most ``batch_size`` texts and
    ``batch_size * max_seq_length`` padded tokens), all in a background
    thread while ``encoder`` (default: the model's PyTorch forward pass,
    see :mod:`knowledge_map.backends`) runs the chunk before.  Outputs stay
    on the encoder's device until the end, and row indices on the host:
    the loop never waits for a GPU, one copy to the host at the end does.
    ``progress(done, total)`` is called after every batch is queued.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from knowledge_map.backends import TorchEncoder
    from knowledge_map.tokens import TokenizedTexts, fast_tokenizer

    dim = model.get_embedding_dimension()
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    encoder = encoder or TorchEncoder(model)
    multiple = getattr(encoder, "length_multiple", 1)
    cap = model.max_seq_length
    fast = fast_tokenizer(model, texts, prompt)

    def prepare(rows: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """The chunk ``rows`` as planned batches: (features for the encoder, their rows in ``texts``)."""
        chunk = [texts[i] for i in rows]
        if fast is not None:
            tokens = TokenizedTexts.encode(fast.tokenizer, chunk, prompt, fast.keys)
            lengths = tokens.lengths
        else:  # Lengths with the prompt, as the fast path counts them: the same plan either way.
            lengths = token_lengths(model, [(prompt or "") + text for text in chunk])
        out = []
        for batch in plan_batches(lengths, batch_size, batch_size * cap, multiple, cap):
            if fast is not None:
                features = encoder.from_arrays({**tokens.features(batch, multiple, cap), **fast.extras})
            else:
                features = encoder.prepare([chunk[i] for i in batch], prompt)
            out.append((features, rows[batch]))
        return out

    chunks = text_chunks(len(texts), batch_size, cap)
    vectors, order = [], []
    done = 0
    with ThreadPoolExecutor(max_workers=1) as pool, encoder.context():
        pending = pool.submit(prepare, chunks[0])
        for number in range(len(chunks)):
            batches = pending.result()
            if number + 1 < len(chunks):
                pending = pool.submit(prepare, chunks[number + 1])
            for features, index in batches:
                vectors.append(encoder(features))
                order.append(index)
                done += len(index)
                if progress is not None:
                    progress(done, len(texts))
    # Put back in input order on the host, after one copy: no per-batch transfer of row indices to the device.
    out = np.empty((len(texts), vectors[0].shape[1]), dtype=np.float32)
    out[np.concatenate(order)] = torch.cat(vectors).float().cpu().numpy()
    return l2_normalise(out)


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
        # A hub model is only on disk once loaded: bind the shard to the files it was made with.
        files_sha = files_sha or model_sha256(model_name)
        if not files_sha:
            raise KnowledgeMapError(f"model {model_name!r}: loaded, but its files cannot be found to record which "
                                    "ones made this shard; download it first (huggingface-cli download) or give a folder")
    # On CUDA, the shard's FLOP decide whether compiling pays.
    flops = estimated_flops(model, texts) if device == "cuda" else 0.0
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
        embeddings = embed_texts(model, texts, batch_size, prompt, ProgressLog(f"shard {shard}"), encoder)
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
