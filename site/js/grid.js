// The one grid convention, shared with knowledge_map/grid.py (a browser test
// checks that both agree): the unit square is cut into n x n cells; cell g on
// an axis spans [g/n, (g+1)/n) (the last one also holds 1.0); its centre is
// (g + 0.5) / n.

/** Centre of cell g on an axis of n cells: (g + 0.5) / n. */
export function cellCenter(g, n) {
  return (g + 0.5) / n;
}

/** Cell holding coordinate x in [0, 1]: floor(x * n), clipped to 0..n-1. */
export function cellIndex(x, n) {
  return Math.min(n - 1, Math.max(0, Math.floor(x * n)));
}
