// The knowledge heatmap, the same estimator as knowledge_map/heatmap.py (a
// browser test checks both give the same grid to 1e-6):
//   w_i(p) = exp(-|p - q_i|^2 / (2 sigma^2))
//   K(p)   = (sum_i w_i c_i + w0 * 0.5) / (sum_i w_i + w0)
// c_i is 1 for a right answer and 0 for a wrong one; the prior w0 pulls places
// far from every answer back to 0.5 ("no evidence").
import { cellCenter } from "./grid.js";

export const NO_EVIDENCE = 0.5;

/**
 * Estimate and evidence (total kernel weight) at map point (px, py).
 * answers: [{x, y, correct}] with correct a boolean.
 */
export function knowledgeAt(px, py, answers, sigma, priorWeight) {
  let evidence = 0;
  let weighted = 0;
  for (const a of answers) {
    const dx = px - a.x;
    const dy = py - a.y;
    const w = Math.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma));
    evidence += w;
    weighted += w * (a.correct ? 1 : 0);
  }
  const total = evidence + priorWeight;
  const estimate = total > 0 ? (weighted + priorWeight * NO_EVIDENCE) / total : NO_EVIDENCE;
  return { estimate, evidence };
}

/** The n x n estimate at cell centres, row-major [gy * n + gx], as a Float64Array. */
export function knowledgeGrid(answers, sigma, n, priorWeight) {
  const grid = new Float64Array(n * n);
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      grid[gy * n + gx] = knowledgeAt(cellCenter(gx, n), cellCenter(gy, n), answers, sigma, priorWeight).estimate;
    }
  }
  return grid;
}

// Colour ramp from "not known" (0) through "no evidence" (0.5) to "known" (1):
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

/** A words-only reading of an estimate, for the readout. */
export function describe(estimate, evidence) {
  if (evidence < 0.05) return "no evidence yet";
  if (estimate >= 0.75) return "probably known";
  if (estimate >= 0.55) return "partly known";
  if (estimate > 0.45) return "uncertain";
  if (estimate > 0.25) return "partly unknown";
  return "probably not known";
}
