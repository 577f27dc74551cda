// Drawing the map: three stacked canvases (base: knowledge and density
// layers; points; overlay: labels, answered questions, hover and search
// rings), one frame per animation frame at most, and the map geometry the
// other modules share (where an article is, which one is under the cursor,
// flights).
import { $ } from "./dom.js";
import { chooseLevel, placeLabels } from "./labels.js";
import { scheduleHashUpdate } from "./link.js";
import { densityImage, heatImage, nearestPoint, pointSize, rasterPoints } from "./render.js";
import { state, view } from "./state.js";
import { interpolateView } from "./view.js";

const HOVER_RADIUS_PX = 8;
const LABEL_MIN_CELL_PX = 110;
const FLY_MS = 600;
const DENSITY_SIZE = 512;

/** Fit the canvases to the map element (CSS size times the device pixel ratio). */
export function resize() {
  const map = $("map");
  const width = map.clientWidth;
  const height = map.clientHeight;
  state.dpr = Math.min(2, window.devicePixelRatio || 1);
  view.resize(width, height);
  for (const id of ["base-layer", "point-layer", "overlay-layer"]) {
    const canvas = $(id);
    canvas.width = Math.max(1, Math.round(width * state.dpr));
    canvas.height = Math.max(1, Math.round(height * state.dpr));
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
  }
  const points = $("point-layer");
  state.pointImage = points.getContext("2d").createImageData(points.width, points.height);
  state.pointBuffer = new Uint32Array(state.pointImage.data.buffer);
  requestRender();
}

/** Draw a frame at the next animation frame (many requests, one frame). */
export function requestRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

/** Draw a frame now. */
export function render() {
  if (!state.points) return;
  const started = performance.now();
  const dpr = state.dpr;
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
    base.drawImage(state.heatCanvas, sx0, sy0, side, side);
    base.globalAlpha = 1;
  }
  if (state.layers.density && state.densityReady) base.drawImage(state.densityCanvas, sx0, sy0, side, side);

  const pointCtx = $("point-layer").getContext("2d");
  if (state.layers.points) {
    const image = state.pointImage;
    const size = pointSize(state.points.n, view.zoom, dpr);
    rasterPoints(state.pointBuffer, image.width, image.height, state.points, state.palette, view, dpr, size);
    pointCtx.putImageData(image, 0, 0);
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
  ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
  if (state.layers.labels && state.labels) drawLabels(ctx);
  else state.placedLabels = [];
  drawQuestions(ctx);
  for (const [row, colour, radius] of [
    [state.highlight, "#d4006a", 11],
    [state.hover, "#111111", 7],
  ]) {
    if (row < 0) continue;
    const [sx, sy] = screenOf(row);
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

/** Draw the density layer once (it depends on the points only). */
export function buildDensity() {
  const canvas = state.densityCanvas;
  canvas.width = DENSITY_SIZE;
  canvas.height = DENSITY_SIZE;
  const rgba = densityImage(state.points, DENSITY_SIZE);
  canvas.getContext("2d").putImageData(new ImageData(rgba, DENSITY_SIZE, DENSITY_SIZE), 0, 0);
  state.densityReady = true;
}

/** Redraw the knowledge layer from state.heatGrid (n x n cells) and the article density. */
export function drawHeat(density, n) {
  const canvas = state.heatCanvas;
  canvas.width = n;
  canvas.height = n;
  canvas.getContext("2d").putImageData(new ImageData(heatImage(state.heatGrid, n, density), n, n), 0, 0);
  requestRender();
}

// ------------------------------------------------------------ map geometry

/** Article positions in map units, as Float64Arrays (what the heat layer and the focus use). */
export function worldPositions(points) {
  const xs = new Float64Array(points.n);
  const ys = new Float64Array(points.n);
  for (let i = 0; i < points.n; i++) {
    xs[i] = points.x[i] / points.scale;
    ys[i] = points.y[i] / points.scale;
  }
  return { xs, ys };
}

/** Map position [x, y] of article row. */
export function worldOf(row) {
  const p = state.points;
  return [p.x[row] / p.scale, p.y[row] / p.scale];
}

/** Screen position [sx, sy] (CSS pixels in the map) of article row. */
export function screenOf(row) {
  const [x, y] = worldOf(row);
  return view.toScreen(x, y);
}

/** The article within a few pixels of screen point (sx, sy), or -1 (and -1 until the hover index exists). */
export function pointAt(sx, sy) {
  if (!state.index) return -1;
  const [wx, wy] = view.toWorld(sx, sy);
  return nearestPoint(state.points, state.index, wx, wy, HOVER_RADIUS_PX / view.scale);
}

/** Animate the view to centre (x, y) at zoom; resolves when it lands. */
export function flyTo(x, y, zoom) {
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
