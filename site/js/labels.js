// Cell labels from cell_labels.json levels: coarse cells when zoomed out,
// finer ones when zoomed in, placed greedily (most articles first) so that no
// two labels overlap.
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
 * Non-overlapping labels for the cells of one level inside the viewport.
 * toScreen(x, y) -> [sx, sy]; measure(text) -> width in px. Returns
 * [{text, cell, x, y, box}] with box padded by pad px.
 */
export function placeLabels(level, toScreen, measure, viewport, options) {
  const { height, pad, maxChars, maxLabels } = options;
  const candidates = [];
  for (const cell of level.cells) {
    const [sx, sy] = toScreen(cellCenter(cell.gx, level.n), cellCenter(cell.gy, level.n));
    if (sx < -50 || sy < -20 || sx > viewport.width + 50 || sy > viewport.height + 20) continue;
    candidates.push({ cell, sx, sy });
  }
  candidates.sort((a, b) => b.cell.count - a.cell.count || a.cell.gy - b.cell.gy || a.cell.gx - b.cell.gx);
  const placed = [];
  for (const { cell, sx, sy } of candidates) {
    if (placed.length >= maxLabels) break;
    const text = labelText(cell, maxChars);
    if (!text) continue;
    const half = measure(text) / 2;
    const box = { x0: sx - half - pad, y0: sy - height / 2 - pad, x1: sx + half + pad, y1: sy + height / 2 + pad };
    if (box.x0 < 0 || box.y0 < 0 || box.x1 > viewport.width || box.y1 > viewport.height) continue;
    if (placed.some((p) => overlaps(p.box, box))) continue;
    placed.push({ text, cell, x: sx, y: sy, box });
  }
  return placed;
}
