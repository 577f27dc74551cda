// Drawing: points are rasterised straight into an ImageData buffer (a plain
// loop over typed arrays: a few milliseconds for 250,000 points, with or
// without a GPU); density and knowledge layers are small images scaled onto
// the map by the canvas.
import { heatColour } from "./heatmap.js";

// Topic colours (Tableau 20 order, then grey for "Other"); 255 = no topic.
export const TOPIC_COLOURS = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#dbdb8d", "#9edae5", "#525252",
];
const NO_TOPIC_COLOUR = "#6b6b6b";

/** The colour of topic code i, given the manifest's topic names. */
export function topicColour(i, topics) {
  if (i >= topics.length) return NO_TOPIC_COLOUR;
  if (topics[i] === "Other") return "#a0a0a0";
  return TOPIC_COLOURS[i % TOPIC_COLOURS.length];
}

/** 256 packed little-endian RGBA colours, one per topic code, for the raster loop. */
export function packedPalette(topics) {
  const palette = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const hex = topicColour(i, topics);
    const r = parseInt(hex.slice(1, 3), 16);
    const g = parseInt(hex.slice(3, 5), 16);
    const b = parseInt(hex.slice(5, 7), 16);
    palette[i] = (255 << 24) | (b << 16) | (g << 8) | r;
  }
  return palette;
}

/**
 * Bucket the points on a g x g grid (counting sort): order lists point rows
 * cell by cell, start[c]..start[c+1] are cell c's. Hover looks up only the
 * cells near the cursor.
 */
export function buildIndex(points, g) {
  const { n, x, y, scale } = points;
  const cellOf = new Uint32Array(n);
  const start = new Uint32Array(g * g + 1);
  const f = g / (scale + 1);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(y[i] * f) * g + Math.floor(x[i] * f);
    cellOf[i] = c;
    start[c + 1]++;
  }
  for (let c = 0; c < g * g; c++) start[c + 1] += start[c];
  const fill = start.slice(0, g * g);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[fill[cellOf[i]]++] = i;
  return { g, start, order };
}

/** Row of the point nearest to world (wx, wy) within radius (world units), or -1. */
export function nearestPoint(points, index, wx, wy, radius) {
  const { g, start, order } = index;
  const { x, y, scale } = points;
  const x0 = Math.max(0, Math.floor((wx - radius) * g));
  const x1 = Math.min(g - 1, Math.floor((wx + radius) * g));
  const y0 = Math.max(0, Math.floor((wy - radius) * g));
  const y1 = Math.min(g - 1, Math.floor((wy + radius) * g));
  let best = -1;
  let bestD = radius * radius;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      const c = cy * g + cx;
      for (let k = start[c]; k < start[c + 1]; k++) {
        const i = order[k];
        const dx = x[i] / scale - wx;
        const dy = y[i] / scale - wy;
        const d = dx * dx + dy * dy;
        if (d <= bestD) {
          bestD = d;
          best = i;
        }
      }
    }
  }
  return best;
}

/** Point size in device pixels: small when many points crowd the screen, larger when zoomed in. */
export function pointSize(n, zoom, dpr) {
  const base = n > 150000 ? 1 : n > 20000 ? 1.5 : 2.5;
  return Math.max(1, Math.min(7, Math.round(base * dpr * Math.sqrt(Math.max(1, zoom)))));
}

/**
 * Rasterise every point into buffer (Uint32Array of width x height device
 * pixels, cleared first) as size x size squares in its topic colour.
 */
export function rasterPoints(buffer, width, height, points, palette, view, dpr, size) {
  buffer.fill(0);
  const { n, x, y, topic, scale } = points;
  const s = view.scale * dpr;
  const a = s / scale;
  const bx = (view.width / 2) * dpr - view.cx * s - size / 2;
  const by = (view.height / 2) * dpr + view.cy * s - size / 2;
  const maxX = width - size;
  const maxY = height - size;
  for (let i = 0; i < n; i++) {
    const px = (x[i] * a + bx) | 0;
    const py = (by - y[i] * a) | 0;
    if (px < 0 || py < 0 || px > maxX || py > maxY) continue;
    const colour = palette[topic[i]];
    let o = py * width + px;
    for (let r = 0; r < size; r++, o += width) {
      for (let c = 0; c < size; c++) buffer[o + c] = colour;
    }
  }
}

/** Density image (size x size RGBA, row 0 = top of the map): blurred counts as a grey haze. */
export function densityImage(points, size) {
  const { n, x, y, scale } = points;
  let counts = new Float32Array(size * size);
  const f = size / (scale + 1);
  for (let i = 0; i < n; i++) {
    const gx = Math.floor(x[i] * f);
    const gy = size - 1 - Math.floor(y[i] * f);
    counts[gy * size + gx] += 1;
  }
  for (let pass = 0; pass < 2; pass++) counts = boxBlur(counts, size, 2);
  let max = 0;
  for (const v of counts) max = Math.max(max, v);
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    const a = max > 0 ? Math.sqrt(counts[i] / max) : 0;
    rgba[4 * i] = 70;
    rgba[4 * i + 1] = 80;
    rgba[4 * i + 2] = 100;
    rgba[4 * i + 3] = Math.round(150 * a);
  }
  return rgba;
}

/** Separable box blur of radius r over a size x size grid. */
function boxBlur(src, size, r) {
  const tmp = new Float32Array(size * size);
  const out = new Float32Array(size * size);
  for (let yy = 0; yy < size; yy++) {
    for (let xx = 0; xx < size; xx++) {
      let sum = 0;
      for (let k = -r; k <= r; k++) sum += src[yy * size + Math.min(size - 1, Math.max(0, xx + k))];
      tmp[yy * size + xx] = sum / (2 * r + 1);
    }
  }
  for (let yy = 0; yy < size; yy++) {
    for (let xx = 0; xx < size; xx++) {
      let sum = 0;
      for (let k = -r; k <= r; k++) sum += tmp[Math.min(size - 1, Math.max(0, yy + k)) * size + xx];
      out[yy * size + xx] = sum / (2 * r + 1);
    }
  }
  return out;
}

/**
 * Heat layer image (n x n RGBA, row 0 = top of the map) from the raster
 * [gy * n + gx] of heatmap.js, opaque where articles are dense (alpha
 * min(1, density)), transparent where there are none. Drawn over the unit
 * square with smoothing, pixel g's centre lands on (g + 0.5) / n.
 */
export function heatImage(grid, n, density) {
  const rgba = new Uint8ClampedArray(n * n * 4);
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      const [r, g, b] = heatColour(grid[gy * n + gx]);
      const o = 4 * ((n - 1 - gy) * n + gx);
      rgba[o] = r;
      rgba[o + 1] = g;
      rgba[o + 2] = b;
      rgba[o + 3] = density ? Math.round(255 * Math.min(1, density[gy * n + gx])) : 255;
    }
  }
  return rgba;
}
