"""The CUDA engine: the model's transformer blocks compiled with ``torch.compile``, on bucketed shapes.

A profile of one eager batch of Qwen3-Embedding-0.6B on an H200 spent 22 %
of GPU time in matrix products and most of the rest in element-wise kernels
(RMSNorm, rotary embeddings, SwiGLU, casts).  Compiling fuses them.  How:

- **Regional compilation.**  Each repeated transformer block
  (:func:`repeated_blocks`: Qwen3's ``layers``, BERT's ``encoder.layer``) is
  compiled with ``Module.compile``; the blocks share one compiled graph, so a
  28-layer model compiles one block, not 28.  Compiling the model's
  ``forward`` as a whole fused as much but took 42 s to compile on an H200
  (the blocks: 21 s cold, 6 s with Inductor's cache warm).
  (sentence-transformers calls the transformer's ``forward`` method, not
  the module, so compiling the outer module would do nothing.)
- **Dynamic shapes, bucketed lengths.**  Blocks compile with symbolic
  shapes (``dynamic=True``), and texts are padded to multiples of
  ``length_multiple`` tokens, so a shard of texts of every length compiles
  twice (with and without an attention mask) and meets a handful of kernel
  shapes, not hundreds.  The model's key/value cache is off
  (:func:`knowledge_map.models.load_model`): its per-layer update made
  Dynamo compile every layer apart.
  Batches keep the token budget of :func:`knowledge_map.embed.plan_batches`.
- **Checked.**  Both variants compile in the set-up, on the check
  sentences, and are compared with the same blocks run eagerly
  (``torch.compiler.set_stance("force_eager")``).  A cosine under
  :data:`COMPILE_MIN_COSINE`, or a compiler error, falls back to the eager
  path with a one-line warning.

Whether compiling pays depends on the shard's work:
:func:`resolve_compile` estimates the shard's eager time from its FLOP
(:mod:`knowledge_map.flops`) and compiles only when that time is several
times the compile time.  The constants are measured (docs/gpu.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from knowledge_map.backends import CHECK_SENTENCES, TorchEncoder, agreement
from knowledge_map.errors import KnowledgeMapError

log = logging.getLogger(__name__)

#: Minimum cosine between compiled and eager blocks on CHECK_SENTENCES (both in the model's dtype).
COMPILE_MIN_COSINE = 0.999
#: Sequence lengths are padded up to a multiple of this (a few % of padding at 512 tokens).
LENGTH_MULTIPLE = 64
#: ``auto`` compiles when the shard's estimated eager time is at least this many seconds.  Measured on
#: an H200 (Qwen3-0.6B shape, 512 tokens): a cold compile and set-up cost 25 s and compiled blocks ran
#: 1.88x the eager rate, so compiling pays from about 53 s of eager work (15 s with a warm compile cache).
COMPILE_PAYS_SECONDS = 60.0
#: Share of the GPU's dense half-precision peak the eager path reached (same measurement: 18.8 %).
EAGER_PEAK_SHARE = 0.188
COMPILE_SETTINGS = ("auto", True, False)


def repeated_blocks(module: Any) -> list[Any]:
    """The transformer's repeated blocks: the ``ModuleList`` of same-class modules holding the most parameters.

    Qwen3 and Gemma 3 keep them in ``layers``, BERT in ``encoder.layer``;
    finding them by shape rather than by name serves every architecture.
    """
    import torch

    best: list[Any] = []
    best_params = 0
    for child in module.modules():
        if not isinstance(child, torch.nn.ModuleList) or len(child) < 2:
            continue
        if len({type(block) for block in child}) != 1:
            continue
        params = sum(p.numel() for p in child.parameters())
        if params > best_params:
            best, best_params = list(child), params
    return best


def resolve_compile(setting: Any, device: str, backend: str, flops: float, device_name: str = "") -> bool:
    """Whether to compile: ``True``/``False`` as configured, ``auto`` when it pays.

    ``auto`` compiles on CUDA GPUs of known peak (:func:`knowledge_map.flops.gpu_peak_flops`)
    when the shard's ``flops`` at :data:`EAGER_PEAK_SHARE` of that peak would take
    at least :data:`COMPILE_PAYS_SECONDS`: a few times the compile time, so the
    2x of compiled blocks repays it.  A small shard (MiniLM on 10,000
    articles: about a second of GPU time) runs eagerly.  Compiling asks for
    the torch engine on CUDA; elsewhere an explicit ``True`` is an error.
    """
    from knowledge_map.flops import gpu_peak_flops

    if not (setting == "auto" or isinstance(setting, bool)):  # 1 == True and 1.0 == True: only the enum's values
        raise KnowledgeMapError(f"config: model.compile must be auto, true or false, got {setting!r}")
    if setting is True and (device != "cuda" or backend != "torch"):
        raise KnowledgeMapError(
            f"model.compile: true runs on CUDA with the torch engine only, but the device is {device!r}"
        )
    if setting != "auto":
        return bool(setting)
    if device != "cuda" or backend != "torch":
        return False
    peak = gpu_peak_flops(device_name)
    if peak is None:
        return False
    return flops / (EAGER_PEAK_SHARE * peak) >= COMPILE_PAYS_SECONDS


class CompiledEncoder(TorchEncoder):
    """:class:`~knowledge_map.backends.TorchEncoder` with compiled blocks and bucketed lengths (CUDA).

    ``self.compiled`` records what happened: whether the compiled blocks are
    used, the compile time, the cosine of the check, and (from
    :meth:`graphs`) how many graphs Dynamo has compiled, so recompilation
    on texts of varied length shows up in the shard's attributes.
    """

    def __init__(self, model: Any, length_multiple: int = LENGTH_MULTIPLE, mode: str | None = None):
        super().__init__(model, length_multiple=length_multiple)
        self.mode = mode
        self.stance = "default"
        self.blocks = repeated_blocks(model[0].auto_model)
        if not self.blocks:
            raise KnowledgeMapError("model.compile: no repeated transformer blocks found in this model")
        self.graphs_before = self.graphs()
        for block in self.blocks:
            block.compile(dynamic=True, mode=mode)
        started = time.perf_counter()
        cosine, error = self._check()
        seconds = time.perf_counter() - started
        used = error is None and cosine >= COMPILE_MIN_COSINE
        if not used:
            self.stance = "force_eager"
            reason = error or f"min cosine {cosine:.5f} < {COMPILE_MIN_COSINE}"
            log.warning("compiled blocks refused (%s); running eagerly", reason)
        self.compiled = {
            "used": used,
            "compile_seconds": round(seconds, 2),  # compiling both variants, plus the two small eager reference batches
            "check_min_cosine": round(float(cosine), 6),
            "blocks": len(self.blocks),
            "length_multiple": length_multiple,
            "mode": mode or "default",
        }

    @staticmethod
    def graphs() -> int:
        """Graphs Dynamo has compiled in this process so far (one per compile or recompile)."""
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    def _run(self, texts: Sequence[str], stance: str, length: int | None = None):
        """Embeddings of ``texts`` under ``stance``, truncated to ``length`` tokens when given."""
        import torch

        kept = self.model.max_seq_length
        try:
            self.model.max_seq_length = length or kept
            with super().context(), torch.compiler.set_stance(stance):
                return self(self.prepare(texts, "")).cpu().numpy()
        finally:
            self.model.max_seq_length = kept

    def _check(self) -> tuple[float, str | None]:
        """Compile and compare with eager: ``(min cosine, error or None)``.

        Two batches: the check sentences (padded, so the blocks get an
        attention mask) and one text cut to exactly ``length_multiple``
        tokens (no padding, where transformers passes no mask at all): both
        variants compile here, in the set-up, not in the middle of a shard.
        """
        worst = 1.0
        whole = " ".join(CHECK_SENTENCES * 8)
        for texts, length in ((list(CHECK_SENTENCES), None), ([whole, whole], self.length_multiple)):
            try:
                compiled = self._run(texts, "default", length)
            except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
                return 0.0, " ".join(f"{type(error).__name__}: {error}".split())[:200]
            eager = self._run(texts, "force_eager", length)
            worst = min(worst, agreement(compiled, eager))
        return worst, None

    def record(self) -> dict[str, Any]:
        """``self.compiled`` with the graphs compiled since this encoder was made."""
        return {**self.compiled, "graphs": self.graphs() - self.graphs_before}

    def context(self):
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(super().context())
        stack.enter_context(torch.compiler.set_stance(self.stance))
        return stack

    def __call__(self, features: dict[str, Any]):
        import torch

        rows = features["input_ids"].shape[0]
        if rows == 1:
            # Dynamo specialises on a size of 1: a one-text batch would recompile.  Run it twice, keep one.
            features = {k: torch.cat([v, v]) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return super().__call__(features)[:rows]
