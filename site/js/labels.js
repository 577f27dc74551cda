// Cell labels from cell_labels.json levels: coarse cells when zoomed out,
// finer ones when zoomed in, placed greedily (most articles first) so that no
// two labels overlap. A label sits at the mean position of its cell's articles
// (cell.x, cell.y; the cell centre for files without them) and its size grows
// with the number of articles it names.
import { cellCenter } from "./grid.js";

/** The finest level whose cells are at least minCellPx wide on screen (the coarsest if none is). */
export function chooseLevel(levels, pixelsPerUnit, minCellPx) {
  let chosen = levels[0];
  for (const level of levels) if (pixelsPerUnit / level.n >= minCellPx) chosen = level;
  return chosen;
}

/** Do two boxes {x0, y0, x1, y1} overlap (touching counts as apart)? */
export function overlaps(a, b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** The text shown for a label: the cell's title, shortened to maxChars. */
export function labelText(cell, maxChars) {
  const text = cell.label || "";
  return text.length > maxChars ? text.slice(0, maxChars - 1) + "…" : text;
}

/**
 * Font size in px for a label naming `count` articles when the level's
 * largest cell holds `maxCount`: minPx + (maxPx - minPx) * sqrt(count / maxCount),
 * so the area a label covers grows roughly with what it holds.
 */
export function labelSize(count, maxCount, minPx, maxPx) {
  if (!(maxCount > 0)) return minPx;
  const share = Math.min(1, Math.max(0, count / maxCount));
  return Math.round(minPx + (maxPx - minPx) * Math.sqrt(share));
}

/** Where a cell's label goes: the mass of its articles, else the cell centre. */
export function labelAnchor(cell, n) {
  const x = Number.isFinite(cell.x) ? cell.x : cellCenter(cell.gx, n);
  const y = Number.isFinite(cell.y) ? cell.y : cellCenter(cell.gy, n);
  return [x, y];
}

/** The placed label whose box holds screen point (sx, sy), or null. */
export function labelAt(placed, sx, sy) {
  for (const label of placed) {
    const b = label.box;
    if (sx >= b.x0 && sx <= b.x1 && sy >= b.y0 && sy <= b.y1) return label;
  }
  return null;
}

/**
 * Non-overlapping labels for the cells of one level inside the viewport.
 * toScreen(x, y) -> [sx, sy]; measure(text, size) -> width in px at font size
 * `size`. Options: minPx, maxPx (font sizes), pad, maxChars, maxLabels. Returns
 * [{text, cell, size, x, y, box}] with box padded by pad px.
 */
export function placeLabels(level, toScreen, measure, viewport, options) {
  const { minPx, maxPx, pad, maxChars, maxLabels } = options;
  const maxCount = level.cells.reduce((m, cell) => Math.max(m, cell.count), 0);
  const candidates = [];
  for (const cell of level.cells) {
    const [x, y] = labelAnchor(cell, level.n);
    const [sx, sy] = toScreen(x, y);
    if (sx < -50 || sy < -20 || sx > viewport.width + 50 || sy > viewport.height + 20) continue;
    candidates.push({ cell, sx, sy });
  }
  candidates.sort((a, b) => b.cell.count - a.cell.count || a.cell.gy - b.cell.gy || a.cell.gx - b.cell.gx);
  const placed = [];
  for (const { cell, sx, sy } of candidates) {
    if (placed.length >= maxLabels) break;
    const text = labelText(cell, maxChars);
    if (!text) continue;
    const size = labelSize(cell.count, maxCount, minPx, maxPx);
    const half = measure(text, size) / 2;
    const height = size + 2;
    const box = { x0: sx - half - pad, y0: sy - height / 2 - pad, x1: sx + half + pad, y1: sy + height / 2 + pad };
    if (box.x0 < 0 || box.y0 < 0 || box.x1 > viewport.width || box.y1 > viewport.height) continue;
    if (placed.some((p) => overlaps(p.box, box))) continue;
    placed.push({ text, cell, size, x: sx, y: sy, box });
  }
  return placed;
}
