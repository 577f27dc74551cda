// The heat layer, the same raster as knowledge_map/heatmap.py (a browser test
// checks both agree to 1e-6): each article's knowledge value (knowledge.js),
// binned to cells (grid.js convention), smoothed with a separable Gaussian of
// `bandwidth` cells (truncated at ceil(3 bandwidth)):
//   H = blur(sum of values) / blur(count),   D = blur(count)  (article density)
// H is 0.5 where D is 0; the page draws H with alpha min(1, D), so the heat
// follows the map's shape. Rows are gy (y upwards).
import { cellIndex } from "./grid.js";

export const NO_EVIDENCE = 0.5;

/** exp(-d^2 / (2 bandwidth^2)) for d = -R..R, R = ceil(3 bandwidth). */
export function gaussianTaps(bandwidth) {
  const radius = Math.ceil(3.0 * bandwidth);
  const taps = new Float64Array(2 * radius + 1);
  for (let d = -radius; d <= radius; d++) taps[d + radius] = Math.exp(-(d * d) / (2.0 * bandwidth * bandwidth));
  return taps;
}

/** Separable convolution of an n x n Float64Array with taps, along x then y, zero outside. */
export function blur(grid, n, taps) {
  const radius = (taps.length - 1) / 2;
  const out = new Float64Array(n * n);
  for (let k = 0; k < taps.length; k++) {
    const d = k - radius;
    const tap = taps[k];
    for (let gy = 0; gy < n; gy++) {
      const row = gy * n;
      for (let gx = Math.max(0, d); gx < Math.min(n, n + d); gx++) out[row + gx] += tap * grid[row + gx - d];
    }
  }
  const result = new Float64Array(n * n);
  for (let k = 0; k < taps.length; k++) {
    const d = k - radius;
    const tap = taps[k];
    for (let gy = Math.max(0, d); gy < Math.min(n, n + d); gy++) {
      const row = gy * n;
      const from = (gy - d) * n;
      for (let gx = 0; gx < n; gx++) result[row + gx] += tap * out[from + gx];
    }
  }
  return result;
}

/**
 * {heat, density}: n x n Float64Arrays (row-major [gy * n + gx]) of the smoothed
 * article values and the article density. xs, ys: map coordinates in [0, 1].
 */
export function heatRaster(xs, ys, values, n, bandwidth) {
  const numerator = new Float64Array(n * n);
  const count = new Float64Array(n * n);
  for (let i = 0; i < values.length; i++) {
    const cell = cellIndex(ys[i], n) * n + cellIndex(xs[i], n);
    numerator[cell] += values[i];
    count[cell] += 1.0;
  }
  const taps = gaussianTaps(bandwidth);
  const smooth = blur(numerator, n, taps);
  const density = blur(count, n, taps);
  const heat = new Float64Array(n * n);
  for (let k = 0; k < n * n; k++) heat[k] = density[k] > 1e-12 ? smooth[k] / density[k] : NO_EVIDENCE;
  return { heat, density };
}

// Colour ramp from "not known" (0) through "even chance" (0.5) to "known" (1):
// a red-blue diverging scale, readable with the common colour-vision deficiencies.
export const HEAT_STOPS = [
  [0.0, [202, 0, 32]],
  [0.25, [244, 165, 130]],
  [0.5, [247, 247, 247]],
  [0.75, [146, 197, 222]],
  [1.0, [5, 113, 176]],
];

/** [r, g, b] of estimate v in [0, 1] on the HEAT_STOPS ramp. */
export function heatColour(v) {
  const t = Math.min(1, Math.max(0, v));
  for (let i = 1; i < HEAT_STOPS.length; i++) {
    const [t1, c1] = HEAT_STOPS[i];
    if (t <= t1) {
      const [t0, c0] = HEAT_STOPS[i - 1];
      const f = (t - t0) / (t1 - t0);
      return c0.map((c, k) => Math.round(c + f * (c1[k] - c)));
    }
  }
  return HEAT_STOPS[HEAT_STOPS.length - 1][1];
}

/** CSS linear-gradient for the legend, from the same stops. */
export function heatGradientCss() {
  const stops = HEAT_STOPS.map(([t, [r, g, b]]) => `rgb(${r},${g},${b}) ${t * 100}%`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** A words-only reading of an estimate and its confidence (share of it that is evidence, not prior), for the readout. */
export function describe(estimate, confidence) {
  if (confidence < 0.05) return "no answer near here: your overall level";
  if (estimate >= 0.75) return "probably known";
  if (estimate >= 0.55) return "partly known";
  if (estimate > 0.45) return "uncertain";
  if (estimate > 0.25) return "partly unknown";
  return "probably not known";
}
