"""The one grid convention, shared by labels, heatmaps and the site.

The unit square is cut into ``n x n`` cells.  Cell ``g`` on an axis spans
``[g/n, (g+1)/n)`` (the last cell also holds 1.0) and its centre is
``(g + 0.5) / n``.  ``site/js/grid.js`` implements the same two functions,
and a test checks that both agree.
"""

from __future__ import annotations

import numpy as np


def cell_center(g, n: int):
    """Centre of cell ``g`` on an axis of ``n`` cells: (g + 0.5) / n."""
    return (np.asarray(g, dtype=np.float64) + 0.5) / n


def cell_index(x, n: int):
    """Cell holding coordinate ``x`` in [0, 1]: floor(x * n), clipped to 0..n-1."""
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) * n).astype(np.int64), 0, n - 1)
