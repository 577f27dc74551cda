"""Project embeddings to 2-D with UMAP and normalise the map to the unit square.

Normalisation is isotropic (one scale for both axes, the shorter axis
centred), so a distance on the normalised map means the same in every
direction: the heatmap's Gaussian kernel and the question placement rely
on that.
"""

from __future__ import annotations

import pickle
from typing import Any

import h5py
import numpy as np

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.io import atomic_path


def fit_umap(embeddings: np.ndarray, n_neighbors: int, min_dist: float, metric: str, random_state: int, **kwargs: Any):
    """Fit UMAP and return ``(reducer, coords)``; a fixed ``random_state`` makes it deterministic."""
    import umap

    n = len(embeddings)
    if n < 3:
        raise KnowledgeMapError(f"map: UMAP needs at least 3 articles, the corpus has {n}")
    reducer = umap.UMAP(
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        metric=metric,
        random_state=random_state,
        **kwargs,
    )
    coords = reducer.fit_transform(embeddings).astype(np.float32)
    return reducer, coords


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


def apply_bounds(coords: np.ndarray, bounds: dict[str, float]) -> np.ndarray:
    """Map raw 2-D coordinates with the bounds of :func:`normalise_coords`."""
    offset = np.array([bounds["offset_x"], bounds["offset_y"]])
    return ((np.asarray(coords, dtype=np.float64) - offset) / bounds["scale"]).astype(np.float32)


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
