"""The heat layer: the articles' knowledge values, drawn smoothly over the map.

Each article carries a value (:mod:`knowledge_map.knowledge`); the layer is
their Nadaraya-Watson smooth on an ``n x n`` raster::

    H(cell) = sum_i k(cell - cell_i) v_i / sum_i k(cell - cell_i)
    D(cell) = sum_i k(cell - cell_i)          (the article density)

with articles binned to cells by the grid convention of
:mod:`knowledge_map.grid` (``floor(x n)``), and ``k`` a separable Gaussian of
``bandwidth`` cells truncated at ``ceil(3 bandwidth)``.  Where ``D`` is tiny
there are no articles and the layer is transparent (``alpha = min(1, D)``),
so the heat follows the map's shape instead of filling a blocky grid.
``site/js/heatmap.js`` computes the same raster; a browser test checks both
agree to 1e-6.  Rows are indexed by ``gy`` (y upwards), like every grid here.
"""

from __future__ import annotations

import math

import numpy as np

from knowledge_map.grid import cell_index


def gaussian_taps(bandwidth: float) -> np.ndarray:
    """exp(-d^2 / (2 bandwidth^2)) for d = -R..R, R = ceil(3 bandwidth)."""
    radius = int(math.ceil(3.0 * bandwidth))
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-(d * d) / (2.0 * bandwidth * bandwidth))


def blur(grid: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable convolution with ``taps`` along x then y, zero outside the raster."""
    radius = len(taps) // 2
    n = grid.shape[0]
    out = np.zeros_like(grid)
    for k, tap in enumerate(taps):
        d = k - radius
        if d >= 0:
            out[:, d:] += tap * grid[:, : n - d]
        else:
            out[:, :d] += tap * grid[:, -d:]
    result = np.zeros_like(grid)
    for k, tap in enumerate(taps):
        d = k - radius
        if d >= 0:
            result[d:, :] += tap * out[: n - d, :]
        else:
            result[:d, :] += tap * out[-d:, :]
    return result


def heat_raster(xy, values, n: int, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """(H, D): the smoothed values and the article density on an ``n x n`` raster, indexed ``[gy, gx]``.

    ``H`` is 0.5 where ``D`` is 0 (no article anywhere near).
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    values = np.asarray(values, dtype=np.float64)
    gx, gy = cell_index(xy[:, 0], n), cell_index(xy[:, 1], n)
    numerator = np.zeros((n, n))
    count = np.zeros((n, n))
    np.add.at(numerator, (gy, gx), values)
    np.add.at(count, (gy, gx), 1.0)
    taps = gaussian_taps(bandwidth)
    smooth, density = blur(numerator, taps), blur(count, taps)
    with np.errstate(invalid="ignore", divide="ignore"):
        heat = np.where(density > 1e-12, smooth / np.where(density > 1e-12, density, 1.0), 0.5)
    return heat, density
