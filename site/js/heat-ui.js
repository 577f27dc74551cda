// "What you know": the estimate after the answers (knowledge.js), its heat
// layer and readout, the quiz's chooser, and the list of articles to read next.
import { $ } from "./dom.js";
import { drawHeat } from "./draw.js";
import { cellIndex } from "./grid.js";
import { describe, heatRaster } from "./heatmap.js";
import { articleState, nextQuestion, readingList } from "./knowledge.js";
import { selectArticle } from "./search-ui.js";
import { state, view } from "./state.js";

export const NO_ANSWERS = "Answer quiz questions to see what you know.";

/** Difficulty of each question (0 without calibration). */
function difficulties() {
  return state.quiz.questions.map((q) => q.difficulty || 0);
}

/** Recompute the estimate from the quiz's answers; redraw the heat layer and the reading list. */
export function updateHeat() {
  const h = state.manifest.heatmap;
  const n = state.points.n;
  state.articles = articleState(state.lists, state.quiz.evidence(), difficulties(), h.prior_weight, h.mean_difficulty, n);
  const confidence = new Float64Array(n);
  for (let i = 0; i < n; i++) confidence[i] = state.articles.evidence[i] / (state.articles.evidence[i] + h.prior_weight);
  const { xs, ys } = state.world;
  const { heat, density } = heatRaster(xs, ys, state.articles.value, h.raster, h.bandwidth);
  state.heatGrid = heat;
  state.confidenceGrid = heatRaster(xs, ys, confidence, h.raster, h.bandwidth).heat;
  drawHeat(density, h.raster);
  renderReadNext();
}

/** The quiz's chooser: the question that tells most about the map (or the focused area). */
export function chooseQuestion(exclude, focus) {
  if (!state.articles) return null;
  return nextQuestion(state.lists, state.articles, difficulties(), exclude, focus);
}

/** The "Read next" list: articles next to what is known, probably not known yet. */
export function renderReadNext() {
  const h = state.manifest.heatmap;
  const list = $("read-next-list");
  list.replaceChildren();
  const answers = state.quiz.evidence();
  const rows = answers.length ? readingList(state.articles, state.lists, answers, h.prior_weight, h.read_next || 0) : [];
  $("read-next").hidden = rows.length === 0;
  for (const row of rows) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.row = String(row);
    button.textContent = state.titles ? state.titles[row] : `article ${row}`;
    // Flies to the article and opens its card (excerpt and link): details are fetched only then.
    button.addEventListener("click", () => selectArticle(row));
    li.append(button);
    list.append(li);
  }
}

/** The estimate at screen point (sx, sy), in words, in the readout. */
export function readout(sx, sy) {
  const out = $("heat-readout");
  if (!state.quiz || !state.quiz.answers.length) {
    out.textContent = NO_ANSWERS;
    return;
  }
  const [wx, wy] = view.toWorld(sx, sy);
  if (wx < 0 || wx > 1 || wy < 0 || wy > 1) {
    out.textContent = "Point at the map to read the estimate there.";
    return;
  }
  const n = state.manifest.heatmap.raster;
  const cell = cellIndex(wy, n) * n + cellIndex(wx, n);
  const estimate = state.heatGrid[cell];
  const confidence = state.confidenceGrid[cell];
  out.dataset.estimate = estimate.toFixed(6);
  out.textContent = `Here: ${estimate.toFixed(2)} — ${describe(estimate, confidence)} (evidence ${Math.round(100 * confidence)}%)`;
}
