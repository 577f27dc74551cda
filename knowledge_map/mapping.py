"""Project embeddings to 2-D with UMAP and normalise the map to the unit square.

Normalisation is isotropic (one scale for both axes, the shorter axis
centred), so a distance on the normalised map means the same in every
direction: the heatmap's Gaussian kernel and the question placement rely
on that.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import h5py
import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path


def pca_fit(embeddings: np.ndarray, dims: int, block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA: ``(mean, components)`` with ``components`` of shape (dims, d), largest variance first.

    The covariance ``C = X^T X / n - mu mu^T`` is accumulated in float64 over
    row blocks (memory: one block plus d x d), then ``eigh(C)``.  Each
    component's sign is fixed so its largest-magnitude loading is positive,
    so the same matrix always gives the same projection.
    """
    x = np.asarray(embeddings)
    n, d = x.shape
    gram = np.zeros((d, d), dtype=np.float64)
    total = np.zeros(d, dtype=np.float64)
    for start in range(0, n, block):
        chunk = np.asarray(x[start : start + block], dtype=np.float32)
        gram += (chunk.T @ chunk).astype(np.float64)
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / n
    covariance = gram / n - np.outer(mean, mean)
    _, vectors = np.linalg.eigh(covariance)
    components = vectors[:, ::-1][:, : min(dims, d)].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return mean.astype(np.float32), (components * signs[:, None]).astype(np.float32)


def pca_transform(embeddings: np.ndarray, mean: np.ndarray, components: np.ndarray, block: int = 65536) -> np.ndarray:
    """``(X - mean) @ components.T`` in float32, block by block."""
    x = np.asarray(embeddings)
    out = np.empty((len(x), len(components)), dtype=np.float32)
    for start in range(0, len(x), block):
        out[start : start + block] = (np.asarray(x[start : start + block], dtype=np.float32) - mean) @ components.T
    return out


class ProjectedUMAP:
    """A fitted UMAP behind an optional PCA: ``transform`` maps new embeddings the way the map was made."""

    def __init__(self, umap_model: Any, mean: np.ndarray | None = None, components: np.ndarray | None = None):
        self.umap, self.mean, self.components = umap_model, mean, components

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        if self.components is None:
            return np.asarray(embeddings, dtype=np.float32)
        return pca_transform(embeddings, self.mean, self.components)

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Map new embeddings onto the fitted map (UMAP's ``transform``).

        A map fitted on an exact neighbour graph has no search index; the
        first call builds one (nn-descent on the fitted data), so only
        those who map new texts pay for it.
        """
        if getattr(self.umap, "_knn_search_index", False) is None:
            data = self.umap._raw_data
            _, _, index = nearest_neighbours(data, self.umap._n_neighbors, self.umap.metric, 0)
            self.umap._knn_search_index = index
        return self.umap.transform(self.project(embeddings)).astype(np.float32)


#: Below this many rows umap-learn computes exact neighbours itself (and ignores a precomputed graph).
EXACT_KNN_ROWS = 4096


def exact_neighbours(data: np.ndarray, n_neighbors: int, metric: str, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN graph ``(indices, distances)`` by blocked matrix products, each row's own index first.

    ``metric`` is ``cosine`` (``1 - x.y / |x||y|``) or ``euclidean``.
    Costs ``n^2 d`` multiply-adds in float32 with memory for one block of
    similarities; below a few hundred thousand rows it is faster than
    nn-descent, whose numba compilation alone takes ~20 s per process.
    Ties are broken by the lower index, so the graph is the same on every run.
    """
    x = np.asarray(data, dtype=np.float32)
    n = len(x)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1)
    elif metric != "euclidean":
        raise KnowledgeMapError(f"exact neighbours support cosine and euclidean distances, not {metric!r}")
    squared = (x * x).sum(axis=1)
    indices = np.empty((n, n_neighbors), dtype=np.int32)
    distances = np.empty((n, n_neighbors), dtype=np.float32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        # Larger is nearer: the similarity, or minus the squared distance.
        score = x[rows] @ x.T
        if metric == "euclidean":
            score = 2 * score - squared[None, :]
        score[np.arange(len(rows)), rows] = np.inf
        top = np.argpartition(-score, n_neighbors - 1, axis=1)[:, :n_neighbors]
        order = np.lexsort((top, -np.take_along_axis(score, top, axis=1)))
        chosen = np.take_along_axis(top, order, axis=1)
        near = np.take_along_axis(score, chosen, axis=1)
        indices[rows] = chosen
        if metric == "cosine":
            distances[rows] = np.maximum(1.0 - near, 0.0)
        else:
            distances[rows] = np.sqrt(np.maximum(squared[rows, None] - near, 0.0))
    return indices, distances


def nearest_neighbours(data: np.ndarray, n_neighbors: int, metric: str, random_state: int,
                       n_trees: int | None = None, n_iters: int | None = None, max_candidates: int = 60):
    """Approximate kNN graph with pynndescent: ``(indices, distances, index)`` for ``UMAP(precomputed_knn=...)``.

    umap-learn's own call uses ``n_trees = 5 + sqrt(n) / 20`` (30 at 250K),
    ``n_iters = log2(n)`` and ``max_candidates = 60``; fewer trees and
    candidates cost little recall on PCA-projected embeddings and much less
    time.  ``None`` keeps umap-learn's value.  Single-threaded with a fixed
    ``random_state``, so the graph is the same on every machine.
    """
    from pynndescent import NNDescent

    n = len(data)
    index = NNDescent(
        data,
        n_neighbors=n_neighbors,
        metric=metric,
        random_state=random_state,
        n_trees=n_trees if n_trees is not None else min(64, 5 + int(round(n**0.5 / 20.0))),
        n_iters=n_iters if n_iters is not None else max(5, int(round(np.log2(n)))),
        max_candidates=max_candidates,
        low_memory=True,
        n_jobs=1,
        compressed=False,
    )
    indices, distances = index.neighbor_graph
    return indices, distances, index


def fit_umap(
    embeddings: np.ndarray,
    n_neighbors: int,
    min_dist: float,
    metric: str,
    random_state: int,
    pca_dims: int | None = None,
    n_epochs: int | None = None,
    init: str = "spectral",
    knn: dict[str, Any] | None = None,
    n_epochs_large: int | None = None,
    large_rows: int = 100_000,
    exact_knn_rows: int = 0,
    **kwargs: Any,
):
    """Fit UMAP and return ``(reducer, coords)``; a fixed ``random_state`` makes it deterministic.

    With ``pca_dims`` the embeddings are first projected on their top
    principal components (:func:`pca_fit`): the neighbour search, which
    dominates at scale, then works on ``pca_dims`` instead of d numbers per
    row, and everything stays float32.  ``n_epochs`` None is umap-learn's
    default (200 above 10,000 rows, 500 below).  ``init`` is umap-learn's
    (``"pca"`` is cheap and deterministic; ``"spectral"`` costs seconds at
    250K).  ``knn`` (``n_trees``, ``n_iters``, ``max_candidates``) computes
    the neighbour graph with those nn-descent settings
    (:func:`nearest_neighbours`) from :data:`EXACT_KNN_ROWS` rows up.
    Below ``exact_knn_rows`` rows the graph is exact instead
    (:func:`exact_neighbours`): faster there than nn-descent's compilation
    alone, and with no approximation.
    From ``large_rows`` rows up, ``n_epochs_large`` (if set) replaces
    ``n_epochs``: the optimisation is most of the time at scale, and a
    large map keeps its trustworthiness with fewer epochs than a small one.
    ``reducer`` is a :class:`ProjectedUMAP`.
    """
    import umap

    n = len(embeddings)
    if n < 3:
        raise KnowledgeMapError(f"map: UMAP needs at least 3 articles, the corpus has {n}")
    mean = components = None
    data = np.asarray(embeddings, dtype=np.float32)
    if pca_dims is not None and pca_dims < data.shape[1]:
        mean, components = pca_fit(data, pca_dims)
        data = pca_transform(data, mean, components)
    k = min(n_neighbors, n - 1)
    if n_epochs_large is not None and n >= large_rows:
        n_epochs = n_epochs_large
    if EXACT_KNN_ROWS <= n < exact_knn_rows and metric in ("cosine", "euclidean"):
        kwargs["precomputed_knn"] = exact_neighbours(data, k, metric)
    elif knn and n >= EXACT_KNN_ROWS:
        kwargs["precomputed_knn"] = nearest_neighbours(data, k, metric, random_state, **knn)
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=min_dist,
        metric=metric,
        random_state=random_state,
        n_epochs=n_epochs,
        init=init,
        **kwargs,
    )
    with warnings.catch_warnings():
        # An exact graph comes without a search index; transform builds one when asked.
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        coords = reducer.fit_transform(data).astype(np.float32)
    return ProjectedUMAP(reducer, mean, components), coords


def normalise_coords(coords: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Scale 2-D coordinates into [0, 1]² with one scale for both axes.

    Returns the normalised coordinates and the bounds needed to map any raw
    point the same way: ``xy = (raw - offset) / scale``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    low, high = coords.min(axis=0), coords.max(axis=0)
    scale = float(max((high - low).max(), 1e-12))
    offset = low - (scale - (high - low)) / 2
    xy = (coords - offset) / scale
    bounds = {"offset_x": float(offset[0]), "offset_y": float(offset[1]), "scale": scale}
    return np.clip(xy, 0.0, 1.0).astype(np.float32), bounds


def write_coords(path: str, raw: np.ndarray, xy: np.ndarray, ids, bounds: dict[str, float], attrs: dict[str, Any]) -> None:
    """coords.h5: ``raw`` and ``xy`` (N x 2 float32), ``ids``; bounds and settings as attrs."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as h5:
        h5.create_dataset("raw", data=np.asarray(raw, dtype=np.float32))
        h5.create_dataset("xy", data=np.asarray(xy, dtype=np.float32))
        h5.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        for key, value in {**bounds, **attrs}.items():
            h5.attrs[key] = value


def read_coords(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalised coordinates (N x 2) and the file's attributes."""
    with h5py.File(path, "r") as h5:
        return h5["xy"][()], {key: h5.attrs[key] for key in h5.attrs}


def save_reducer(reducer: Any, path: str) -> None:
    """Pickle the fitted reducer so new texts can be mapped later with ``reducer.transform``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        pickle.dump(reducer, handle, protocol=5)


def load_reducer(path: str, allow_pickle: bool = False) -> Any:
    """Unpickle a reducer the workflow wrote; refused unless ``allow_pickle`` (unpickling runs code)."""
    if not allow_pickle:
        raise KnowledgeMapError(f"{path}: loading a pickled reducer runs code; pass allow_pickle=True if you trust it")
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - explicit opt-in above
