// The knowledge map page: wires data, view, layers, hover card, search, quiz,
// heatmap and share link together. Every piece of data text reaches the page
// through textContent (never innerHTML): titles, excerpts, labels and
// questions are text, whatever characters they hold.
import { Details, loadJson, loadKnowledge, loadManifest, loadPoints } from "./data.js";
import { cellIndex } from "./grid.js";
import { describe, heatGradientCss, heatRaster } from "./heatmap.js";
import { articleState, nextQuestion, parseLists, readingList } from "./knowledge.js";
import { chooseLevel, labelAt, placeLabels } from "./labels.js";
import { Quiz } from "./quiz.js";
import {
  buildIndex,
  densityImage,
  heatImage,
  nearestPoint,
  packedPalette,
  pointSize,
  rasterPoints,
  topicColour,
} from "./render.js";
import { foldTitles, searchTitles } from "./search.js";
import { decodeState, encodeState } from "./share.js";
import { View, interpolateView } from "./view.js";

const DATA = "data/";
const HOVER_RADIUS_PX = 8;
const LABEL_MIN_CELL_PX = 110;
const FLY_MS = 600;
const DENSITY_SIZE = 512;

const $ = (id) => document.getElementById(id);

const state = {
  manifest: null,
  points: null,
  index: null,
  titles: null,
  folded: null,
  labels: null,
  quiz: null,
  lists: null, // each question's neighbour list (knowledge.bin)
  world: null, // {xs, ys}: article positions in map units, for the heat layer
  articles: null, // the estimate at every article (knowledge.js articleState)
  heatGrid: null, // the heat layer's raster of article values, [gy * n + gx]
  confidenceGrid: null, // share of the estimate that is evidence, not prior, same raster
  details: null,
  hover: -1,
  pinned: -1,
  highlight: -1,
  flying: false,
  layers: { points: true, density: true, heat: true, labels: true },
  placedLabels: [],
  frameLog: [],
  firstRenderMs: null,
};
const view = new View();
let dpr = Math.min(2, window.devicePixelRatio || 1);
let pointImage = null;
let pointBuffer = null;
let palette = null;
const densityCanvas = document.createElement("canvas");
const heatCanvas = document.createElement("canvas");
let densityReady = false;
let renderQueued = false;

function setStatus(text) {
  const status = $("status");
  status.textContent = text;
  status.hidden = !text;
}

// ---------------------------------------------------------------- drawing

function resize() {
  const map = $("map");
  const width = map.clientWidth;
  const height = map.clientHeight;
  dpr = Math.min(2, window.devicePixelRatio || 1);
  view.resize(width, height);
  for (const id of ["base-layer", "point-layer", "overlay-layer"]) {
    const canvas = $(id);
    canvas.width = Math.max(1, Math.round(width * dpr));
    canvas.height = Math.max(1, Math.round(height * dpr));
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
  }
  const points = $("point-layer");
  pointImage = points.getContext("2d").createImageData(points.width, points.height);
  pointBuffer = new Uint32Array(pointImage.data.buffer);
  requestRender();
}

function requestRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  if (!state.points) return;
  const started = performance.now();
  const [sx0, sy0] = view.toScreen(0, 1);
  const side = view.scale;

  const base = $("base-layer").getContext("2d");
  base.setTransform(1, 0, 0, 1, 0, 0);
  base.clearRect(0, 0, base.canvas.width, base.canvas.height);
  base.setTransform(dpr, 0, 0, dpr, 0, 0);
  base.imageSmoothingEnabled = true;
  if (state.layers.heat) {
    // Half-transparent, so points of every topic colour stay visible on it.
    base.globalAlpha = 0.55;
    base.drawImage(heatCanvas, sx0, sy0, side, side);
    base.globalAlpha = 1;
  }
  if (state.layers.density && densityReady) base.drawImage(densityCanvas, sx0, sy0, side, side);

  const pointCtx = $("point-layer").getContext("2d");
  if (state.layers.points) {
    const size = pointSize(state.points.n, view.zoom, dpr);
    rasterPoints(pointBuffer, pointImage.width, pointImage.height, state.points, palette, view, dpr, size);
    pointCtx.putImageData(pointImage, 0, 0);
  } else {
    pointCtx.clearRect(0, 0, pointCtx.canvas.width, pointCtx.canvas.height);
  }

  drawOverlay();
  const ms = performance.now() - started;
  state.frameLog.push({ at: started, ms });
  if (state.frameLog.length > 2000) state.frameLog.splice(0, 1000);
  if (state.firstRenderMs === null) {
    state.firstRenderMs = performance.now();
    performance.mark("km-first-render");
  }
}

function drawOverlay() {
  const ctx = $("overlay-layer").getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (state.layers.labels && state.labels) drawLabels(ctx);
  else state.placedLabels = [];
  drawQuestions(ctx);
  for (const [row, colour, radius] of [
    [state.highlight, "#d4006a", 11],
    [state.hover, "#111111", 7],
  ]) {
    if (row < 0) continue;
    const [x, y] = worldOf(row);
    const [sx, sy] = view.toScreen(x, y);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(sx, sy, radius, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.strokeStyle = colour;
    ctx.stroke();
  }
}

function drawLabels(ctx) {
  const level = chooseLevel(state.labels.levels, view.scale, LABEL_MIN_CELL_PX);
  const font = (size) => `600 ${size}px system-ui, sans-serif`;
  const widths = new Map();
  const measure = (text, size) => {
    const key = size + "|" + text;
    if (!widths.has(key)) {
      ctx.font = font(size);
      widths.set(key, ctx.measureText(text).width);
    }
    return widths.get(key);
  };
  // Size by the articles a label names: the biggest regions read first.
  state.placedLabels = placeLabels(level, (x, y) => view.toScreen(x, y), measure, view, {
    minPx: 11,
    maxPx: level === state.labels.levels[0] ? 20 : 16,
    pad: 3,
    maxChars: 40,
    maxLabels: 80,
  });
  state.labelLevel = level.n;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.lineJoin = "round";
  for (const label of state.placedLabels) {
    ctx.font = font(label.size);
    ctx.lineWidth = 4;
    ctx.strokeStyle = "rgba(255,255,255,0.92)";
    ctx.strokeText(label.text, label.x, label.y);
    ctx.fillStyle = "#1d2330";
    ctx.fillText(label.text, label.x, label.y);
  }
}

function drawQuestions(ctx) {
  const quiz = state.quiz;
  if (!quiz) return;
  for (const a of quiz.answers) {
    const q = quiz.questions[a.q];
    const right = a.option === q.correctIndex;
    const [sx, sy] = view.toScreen(q.x, q.y);
    ctx.beginPath();
    ctx.arc(sx, sy, 7, 0, 2 * Math.PI);
    ctx.fillStyle = right ? "#1a7f37" : "#c2410c";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    // A shape as well as a colour: a tick for right, a cross for wrong.
    ctx.beginPath();
    if (right) {
      ctx.moveTo(sx - 3.5, sy);
      ctx.lineTo(sx - 1, sy + 3);
      ctx.lineTo(sx + 4, sy - 3);
    } else {
      ctx.moveTo(sx - 3, sy - 3);
      ctx.lineTo(sx + 3, sy + 3);
      ctx.moveTo(sx + 3, sy - 3);
      ctx.lineTo(sx - 3, sy + 3);
    }
    ctx.stroke();
  }
  if (quiz.current !== null) {
    const q = quiz.questions[quiz.current];
    const [sx, sy] = view.toScreen(q.x, q.y);
    ctx.beginPath();
    ctx.arc(sx, sy, 8, 0, 2 * Math.PI);
    ctx.lineWidth = 4;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#1d2330";
    ctx.setLineDash([3, 2]);
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

/** Difficulty of each question (0 without calibration). */
function difficulties() {
  return state.quiz.questions.map((q) => q.difficulty || 0);
}

function updateHeat() {
  const h = state.manifest.heatmap;
  const n = state.points.n;
  state.articles = articleState(state.lists, state.quiz.evidence(), difficulties(), h.prior_weight, h.mean_difficulty, n);
  const confidence = new Float64Array(n);
  for (let i = 0; i < n; i++) confidence[i] = state.articles.evidence[i] / (state.articles.evidence[i] + h.prior_weight);
  const { xs, ys } = state.world;
  const { heat, density } = heatRaster(xs, ys, state.articles.value, h.raster, h.bandwidth);
  state.heatGrid = heat;
  state.confidenceGrid = heatRaster(xs, ys, confidence, h.raster, h.bandwidth).heat;
  heatCanvas.width = h.raster;
  heatCanvas.height = h.raster;
  heatCanvas.getContext("2d").putImageData(new ImageData(heatImage(heat, h.raster, density), h.raster, h.raster), 0, 0);
  renderReadNext();
  requestRender();
}

/** The quiz's chooser: the question that tells most about the map (or the focused area). */
function chooseQuestion(exclude, focus) {
  if (!state.articles) return null;
  return nextQuestion(state.lists, state.articles, difficulties(), exclude, focus);
}

function renderReadNext() {
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
    button.addEventListener("click", () => state.selectRow(row));
    li.append(button);
    list.append(li);
  }
}

function buildDensity() {
  densityCanvas.width = DENSITY_SIZE;
  densityCanvas.height = DENSITY_SIZE;
  const rgba = densityImage(state.points, DENSITY_SIZE);
  densityCanvas.getContext("2d").putImageData(new ImageData(rgba, DENSITY_SIZE, DENSITY_SIZE), 0, 0);
  densityReady = true;
}

// ------------------------------------------------------------ map geometry

/** Article positions in map units, as Float64Arrays (what the heat layer and the focus use). */
function worldPositions(points) {
  const xs = new Float64Array(points.n);
  const ys = new Float64Array(points.n);
  for (let i = 0; i < points.n; i++) {
    xs[i] = points.x[i] / points.scale;
    ys[i] = points.y[i] / points.scale;
  }
  return { xs, ys };
}

function worldOf(row) {
  const p = state.points;
  return [p.x[row] / p.scale, p.y[row] / p.scale];
}

function screenOf(row) {
  const [x, y] = worldOf(row);
  return view.toScreen(x, y);
}

function pointAt(sx, sy) {
  if (!state.index) return -1;
  const [wx, wy] = view.toWorld(sx, sy);
  return nearestPoint(state.points, state.index, wx, wy, HOVER_RADIUS_PX / view.scale);
}

function flyTo(x, y, zoom) {
  const from = { cx: view.cx, cy: view.cy, zoom: view.zoom };
  const to = { cx: x, cy: y, zoom };
  const start = performance.now();
  state.flying = true;
  return new Promise((resolve) => {
    const step = (now) => {
      const t = (now - start) / FLY_MS;
      const v = t < 1 ? interpolateView(from, to, t) : to;
      view.set(v.cx, v.cy, v.zoom);
      render();
      if (t < 1) {
        requestAnimationFrame(step);
      } else {
        state.flying = false;
        scheduleHashUpdate();
        resolve();
      }
    };
    requestAnimationFrame(step);
  });
}

// --------------------------------------------------------------- hover card

function showCard(row, sx, sy, pinned) {
  const card = $("card");
  state.pinned = pinned ? row : -1;
  card.dataset.row = String(row);
  $("card-title").textContent = state.titles ? state.titles[row] : "Loading titles…";
  const topic = state.points.topic[row];
  $("card-topic").textContent = topic < state.manifest.topics.length ? state.manifest.topics[topic] : "";
  $("card-excerpt").textContent = "…";
  const link = $("card-link");
  link.hidden = true;
  link.removeAttribute("href");
  card.hidden = false;
  const map = $("map");
  const w = card.offsetWidth;
  const h = card.offsetHeight;
  const left = Math.min(Math.max(4, sx + 14), map.clientWidth - w - 4);
  const top = sy + 14 + h > map.clientHeight ? Math.max(4, sy - h - 14) : sy + 14;
  card.style.left = left + "px";
  card.style.top = top + "px";
  state.details.get(row).then(
    (d) => {
      if (card.dataset.row !== String(row)) return;
      $("card-excerpt").textContent = d.excerpt;
      if (d.url) {
        link.href = d.url;
        link.hidden = false;
      }
    },
    () => {
      if (card.dataset.row === String(row)) $("card-excerpt").textContent = "(excerpt unavailable)";
    },
  );
}

function hideCard() {
  $("card").hidden = true;
  $("card").dataset.row = "";
  state.pinned = -1;
}

async function openArticle(row, sx, sy) {
  const d = await state.details.get(row);
  if (d.url) window.open(d.url, "_blank", "noopener");
  else showCard(row, sx, sy, true);
}

// ------------------------------------------------------------- interaction

function installMapInput() {
  const map = $("map");
  const pointers = new Map();
  let gesture = null;

  map.addEventListener("pointerdown", (event) => {
    if (event.target.closest(".card, .zoom-controls")) return;
    map.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, { x: event.offsetX, y: event.offsetY });
    gesture = { x: event.offsetX, y: event.offsetY, at: performance.now(), moved: 0 };
  });

  map.addEventListener("pointermove", (event) => {
    if (event.target.closest(".card, .zoom-controls")) return;
    const rect = map.getBoundingClientRect();
    const sx = event.clientX - rect.left;
    const sy = event.clientY - rect.top;
    if (pointers.has(event.pointerId)) {
      const previous = pointers.get(event.pointerId);
      if (pointers.size === 1) {
        view.panBy(sx - previous.x, sy - previous.y);
      } else if (pointers.size === 2) {
        const [other] = [...pointers].filter(([id]) => id !== event.pointerId).map(([, p]) => p);
        const before = Math.hypot(previous.x - other.x, previous.y - other.y);
        const after = Math.hypot(sx - other.x, sy - other.y);
        if (before > 0) view.zoomAt((sx + other.x) / 2, (sy + other.y) / 2, after / before);
      }
      if (gesture) gesture.moved += Math.hypot(sx - previous.x, sy - previous.y);
      pointers.set(event.pointerId, { x: sx, y: sy });
      hover(-1);
      requestRender();
      scheduleHashUpdate();
      return;
    }
    if (event.pointerType === "mouse") {
      hover(pointAt(sx, sy), sx, sy);
      readout(sx, sy);
    }
  });

  const release = (event) => {
    if (!pointers.has(event.pointerId)) return;
    pointers.delete(event.pointerId);
    if (gesture && pointers.size === 0 && gesture.moved < 5 && performance.now() - gesture.at < 600) {
      const rect = map.getBoundingClientRect();
      const sx = event.clientX - rect.left;
      const sy = event.clientY - rect.top;
      const row = pointAt(sx, sy);
      if (row >= 0 && event.pointerType === "mouse") openArticle(row, sx, sy);
      else if (row >= 0) showCard(row, sx, sy, true);
      else hideCard();
      readout(sx, sy);
    }
    gesture = null;
  };
  map.addEventListener("pointerup", release);
  map.addEventListener("pointercancel", release);
  map.addEventListener("pointerleave", () => {
    if (state.pinned < 0) hover(-1);
  });

  map.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = map.getBoundingClientRect();
      const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
      view.zoomAt(event.clientX - rect.left, event.clientY - rect.top, Math.exp(-delta * 0.002));
      hover(-1);
      requestRender();
      scheduleHashUpdate();
    },
    { passive: false },
  );

  map.addEventListener("keydown", (event) => {
    if (event.target !== map) return;
    const step = 60;
    const actions = {
      ArrowLeft: () => view.panBy(step, 0),
      ArrowRight: () => view.panBy(-step, 0),
      ArrowUp: () => view.panBy(0, step),
      ArrowDown: () => view.panBy(0, -step),
      "+": () => view.zoomAt(view.width / 2, view.height / 2, 1.25),
      "=": () => view.zoomAt(view.width / 2, view.height / 2, 1.25),
      "-": () => view.zoomAt(view.width / 2, view.height / 2, 0.8),
      0: () => view.set(0.5, 0.5, 1),
      Escape: () => hideCard(),
    };
    if (!actions[event.key]) return;
    event.preventDefault();
    actions[event.key]();
    requestRender();
    scheduleHashUpdate();
  });

  const zoomButton = (id, factor) =>
    $(id).addEventListener("click", () => {
      view.zoomAt(view.width / 2, view.height / 2, factor);
      requestRender();
      scheduleHashUpdate();
    });
  zoomButton("zoom-in", 1.5);
  zoomButton("zoom-out", 1 / 1.5);
  $("zoom-reset").addEventListener("click", () => flyTo(0.5, 0.5, 1));
  $("card-close").addEventListener("click", hideCard);
  new ResizeObserver(resize).observe(map);
}

function hover(row, sx, sy) {
  if (state.pinned >= 0) return;
  // An empty spot on a label: the card names the region, its size and keywords.
  const label = row < 0 && sx !== undefined ? labelAt(state.placedLabels, sx, sy) : null;
  if (label) showLabelCard(label, sx, sy);
  else if (row < 0 && $("card").dataset.row === "label") hideCard();
  if (row === state.hover) return;
  state.hover = row;
  if (row >= 0) showCard(row, sx, sy, false);
  else if (!label) hideCard();
  requestRender();
}

function showLabelCard(label, sx, sy) {
  const card = $("card");
  if (card.dataset.row === "label" && card.dataset.label === label.text) return;
  card.dataset.row = "label";
  card.dataset.label = label.text;
  $("card-title").textContent = label.text;
  const count = label.cell.count;
  $("card-topic").textContent = `${count.toLocaleString("en")} article${count === 1 ? "" : "s"} in this region`;
  const keywords = label.cell.keywords || [];
  $("card-excerpt").textContent = keywords.length ? `Keywords: ${keywords.join(", ")}` : "";
  $("card-link").hidden = true;
  card.hidden = false;
  const map = $("map");
  card.style.left = Math.min(Math.max(4, sx + 14), map.clientWidth - card.offsetWidth - 4) + "px";
  card.style.top = (sy + 14 + card.offsetHeight > map.clientHeight ? Math.max(4, sy - card.offsetHeight - 14) : sy + 14) + "px";
}

function readout(sx, sy) {
  const out = $("heat-readout");
  if (!state.quiz || !state.quiz.answers.length) {
    out.textContent = "Answer quiz questions to see what you know.";
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

// ----------------------------------------------------------------- search

function installSearch() {
  const input = $("search-input");
  const list = $("search-results");
  let timer = 0;

  const show = () => {
    list.replaceChildren();
    const query = input.value;
    if (!query.trim()) {
      list.hidden = true;
      return;
    }
    if (!state.folded) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Loading titles…";
      list.append(li);
      list.hidden = false;
      return;
    }
    const rows = searchTitles(state.folded, query, 12);
    for (const row of rows) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.row = String(row);
      button.textContent = state.titles[row];
      button.addEventListener("click", () => select(row));
      li.append(button);
      list.append(li);
    }
    if (!rows.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No article title contains that.";
      list.append(li);
    }
    list.hidden = false;
  };

  const select = async (row) => {
    list.hidden = true;
    input.value = state.titles[row];
    state.highlight = row;
    hideCard();
    const [x, y] = worldOf(row);
    await flyTo(x, y, Math.max(view.zoom, 8));
    const [sx, sy] = screenOf(row);
    showCard(row, sx, sy, true);
    requestRender();
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(show, 60);
  });
  input.addEventListener("keydown", (event) => {
    const first = list.querySelector("button");
    if (event.key === "Enter" && first) {
      event.preventDefault();
      clearTimeout(timer);
      show();
      const top = list.querySelector("button");
      if (top) select(Number(top.dataset.row));
    } else if (event.key === "ArrowDown" && first) {
      event.preventDefault();
      first.focus();
    } else if (event.key === "Escape") {
      list.hidden = true;
    }
  });
  list.addEventListener("keydown", (event) => {
    const buttons = [...list.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < buttons.length - 1) buttons[at + 1].focus();
    else if (event.key === "ArrowUp") (at > 0 ? buttons[at - 1] : input).focus();
    else if (event.key === "Escape") input.focus();
    else return;
    event.preventDefault();
  });
  state.selectRow = select;
}

// -------------------------------------------------------------------- quiz

function renderQuiz() {
  const quiz = state.quiz;
  const total = quiz.questions.length;
  const answered = quiz.answers.length;
  $("quiz-progress").textContent = `${answered} of ${total} answered · ${quiz.correctCount()} right`;
  const options = $("quiz-options");
  options.replaceChildren();
  $("quiz-feedback").textContent = "";
  $("quiz-next").hidden = true;
  if (quiz.current === null) {
    $("quiz-question").textContent = total ? "All questions answered. Reset to start again." : "No questions.";
    $("quiz-skip").hidden = true;
    return;
  }
  $("quiz-skip").hidden = false;
  const question = quiz.questions[quiz.current];
  $("quiz-question").textContent = question.question;
  question.options.forEach((text, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "option";
    button.dataset.option = String(i);
    button.textContent = text;
    button.addEventListener("click", () => answer(i));
    options.append(button);
  });
}

function answer(option) {
  const quiz = state.quiz;
  const question = quiz.questions[quiz.current];
  const right = quiz.answer(option);
  if (right === null) return;
  for (const button of $("quiz-options").querySelectorAll("button")) {
    const i = Number(button.dataset.option);
    button.disabled = true;
    if (i === question.correctIndex) button.classList.add("right");
    else if (i === option) button.classList.add("wrong");
  }
  $("quiz-feedback").textContent = right
    ? "Right!"
    : `Not quite: the answer is “${question.options[question.correctIndex]}”.`;
  $("quiz-feedback").className = "feedback " + (right ? "right" : "wrong");
  $("quiz-progress").textContent =
    `${quiz.answers.length} of ${quiz.questions.length} answered · ${quiz.correctCount()} right`;
  $("quiz-skip").hidden = true;
  $("quiz-next").hidden = false;
  $("quiz-next").focus();
  afterAnswersChanged();
}

function afterAnswersChanged() {
  updateHeat();
  scheduleHashUpdate(0);
  const rect = $("map").getBoundingClientRect();
  if (state.lastPointer) readout(state.lastPointer[0] - rect.left, state.lastPointer[1] - rect.top);
}

/** 1 for every article whose point is inside the map's visible area. */
function articlesInView() {
  const { xs, ys } = state.world;
  const mask = new Uint8Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const [sx, sy] = view.toScreen(xs[i], ys[i]);
    mask[i] = sx >= 0 && sx <= view.width && sy >= 0 && sy <= view.height ? 1 : 0;
  }
  return mask;
}

function clearFocus() {
  state.quiz.setFocus(null);
  $("quiz-unfocus").hidden = true;
  $("quiz-focus-note").hidden = true;
  renderQuiz();
  requestRender();
}

function installQuiz() {
  $("quiz-skip").addEventListener("click", () => {
    state.quiz.skip();
    renderQuiz();
    requestRender();
  });
  $("quiz-focus").addEventListener("click", () => {
    const mask = articlesInView();
    let count = 0;
    for (let i = 0; i < mask.length; i++) count += mask[i];
    state.quiz.setFocus(count ? mask : null);
    $("quiz-unfocus").hidden = !count;
    const note = $("quiz-focus-note");
    note.hidden = false;
    note.textContent = count
      ? `Asking about the ${count.toLocaleString()} articles in view.`
      : "No articles in view: asking about the whole map.";
    renderQuiz();
    requestRender();
  });
  $("quiz-unfocus").addEventListener("click", clearFocus);
  $("quiz-next").addEventListener("click", () => {
    state.quiz.advance();
    renderQuiz();
    requestRender();
    const first = $("quiz-options").querySelector("button");
    if (first) first.focus();
  });
  document.addEventListener("pointermove", (event) => {
    state.lastPointer = [event.clientX, event.clientY];
  });
}

// ------------------------------------------------------------ share, reset

let hashTimer = 0;

function scheduleHashUpdate(delay = 300) {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    if (!state.quiz) return; // still loading: the hash keeps what it had
    const hash = encodeState(state.quiz.answers, { cx: view.cx, cy: view.cy, zoom: view.zoom });
    history.replaceState(null, "", location.pathname + location.search + hash);
    if (!$("share-box").hidden) $("share-url").value = location.href;
  }, delay);
}

function restoreFromHash() {
  const questions = state.quiz.questions;
  const counts = questions.map((q) => q.options.length);
  const { answers, view: saved } = decodeState(location.hash, questions.length, counts);
  state.quiz.restore(answers);
  if (saved) view.set(saved.cx, saved.cy, saved.zoom);
  updateHeat(); // the estimate first: the chooser picks the next question from it
  state.quiz.advance();
  renderQuiz();
}

function installShareAndReset() {
  $("share-button").addEventListener("click", () => {
    clearTimeout(hashTimer);
    const hash = encodeState(state.quiz.answers, { cx: view.cx, cy: view.cy, zoom: view.zoom });
    history.replaceState(null, "", location.pathname + location.search + hash);
    const box = $("share-box");
    box.hidden = false;
    const field = $("share-url");
    field.value = location.href;
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).catch(() => {});
  });
  $("reset-button").addEventListener("click", () => {
    clearTimeout(hashTimer);
    state.quiz.reset();
    updateHeat();
    state.quiz.advance();
    $("quiz-unfocus").hidden = true;
    $("quiz-focus-note").hidden = true;
    state.highlight = -1;
    hideCard();
    view.set(0.5, 0.5, 1);
    history.replaceState(null, "", location.pathname + location.search);
    $("share-box").hidden = true;
    $("search-input").value = "";
    renderQuiz();
    $("heat-readout").textContent = "Answer quiz questions to see what you know.";
  });
  window.addEventListener("hashchange", () => {
    restoreFromHash();
    requestRender();
  });
}

// ------------------------------------------------------------------ legend

function renderLegends() {
  $("heat-legend").style.background = heatGradientCss();
  const list = $("topic-legend");
  list.replaceChildren();
  state.manifest.topics.forEach((name, i) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = topicColour(i, state.manifest.topics);
    const text = document.createElement("span");
    text.textContent = name;
    li.append(swatch, text);
    list.append(li);
  });
  $("topics-heading").parentElement.hidden = state.manifest.topics.length === 0;
  $("attribution-detail").textContent = state.manifest.attribution;
  for (const [key, id] of [
    ["points", "layer-points"],
    ["density", "layer-density"],
    ["heat", "layer-heat"],
    ["labels", "layer-labels"],
  ]) {
    $(id).addEventListener("change", (event) => {
      state.layers[key] = event.target.checked;
      requestRender();
    });
  }
}

// ---------------------------------------------------------------- start-up

async function start() {
  installMapInput();
  resize();
  const manifest = await loadManifest(DATA);
  state.manifest = manifest;
  state.details = new Details(DATA, manifest);
  const [points, labels, questions] = await Promise.all([
    loadPoints(DATA, manifest),
    loadJson(DATA, manifest.files.labels),
    loadJson(DATA, manifest.files.questions),
  ]);
  state.points = points;
  state.world = worldPositions(points);
  state.labels = labels.levels.length ? labels : null;
  palette = packedPalette(manifest.topics);
  const saved = decodeState(location.hash, questions.length).view;
  if (saved) view.set(saved.cx, saved.cy, saved.zoom);
  renderLegends();
  installSearch();
  render();
  setStatus("");
  // After the first frame: the quiz and its knowledge lists (8 KB a question), the hover index, the
  // density layer, then titles.
  state.lists = parseLists(await loadKnowledge(DATA, manifest), manifest.knowledge);
  state.quiz = new Quiz(questions, chooseQuestion);
  restoreFromHash();
  installQuiz();
  installShareAndReset();
  await new Promise((resolve) => setTimeout(resolve, 0));
  state.index = buildIndex(points, Math.max(16, Math.min(1024, Math.round(Math.sqrt(points.n / 4)))));
  buildDensity();
  requestRender();
  state.titles = await loadJson(DATA, manifest.files.titles);
  state.folded = foldTitles(state.titles);
  renderReadNext();
  if (state.highlight < 0 && $("search-input").value) $("search-input").dispatchEvent(new Event("input"));
}

const ready = start().catch((error) => {
  setStatus("The map could not be loaded: " + error.message);
  console.error(error);
  throw error;
});

// A small read-only handle for tests and benchmarks (no data flows in through it).
window.km = {
  ready,
  state,
  view,
  render,
  screenOf,
  worldOf,
  rowOf: (title) => (state.titles ? state.titles.indexOf(title) : -1),
  updateHeat: () => updateHeat(),
  titlesReady: () => state.titles !== null && state.index !== null,
  select: (row) => state.selectRow(row),
};
