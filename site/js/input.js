// Moving around the map: drag to pan, pinch or wheel to zoom, the zoom
// buttons, and the keyboard (arrows pan, + and - zoom, 0 shows the whole
// map, Escape closes the card). The mouse hovers articles and labels; a
// click or tap opens an article.
import { hideCard, hover, openArticle, showCard } from "./card.js";
import { $ } from "./dom.js";
import { flyTo, pointAt, requestRender, resize } from "./draw.js";
import { readout } from "./heat-ui.js";
import { scheduleHashUpdate } from "./link.js";
import { state, view } from "./state.js";

const KEY_STEP_PX = 60;

/** The view moved: draw it and, once it rests, write it into the URL. */
function moved() {
  requestRender();
  scheduleHashUpdate();
}

export function installMapInput() {
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
      moved();
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
      moved();
    },
    { passive: false },
  );

  const zoomCentre = (factor) => () => view.zoomAt(view.width / 2, view.height / 2, factor);
  map.addEventListener("keydown", (event) => {
    if (event.target !== map) return;
    const actions = {
      ArrowLeft: () => view.panBy(KEY_STEP_PX, 0),
      ArrowRight: () => view.panBy(-KEY_STEP_PX, 0),
      ArrowUp: () => view.panBy(0, KEY_STEP_PX),
      ArrowDown: () => view.panBy(0, -KEY_STEP_PX),
      "+": zoomCentre(1.25),
      "=": zoomCentre(1.25),
      "-": zoomCentre(0.8),
      0: () => view.set(0.5, 0.5, 1),
      Escape: () => hideCard(),
    };
    if (!actions[event.key]) return;
    event.preventDefault();
    actions[event.key]();
    moved();
  });

  for (const [id, factor] of [
    ["zoom-in", 1.5],
    ["zoom-out", 1 / 1.5],
  ]) {
    $(id).addEventListener("click", () => {
      zoomCentre(factor)();
      moved();
    });
  }
  $("zoom-reset").addEventListener("click", () => flyTo(0.5, 0.5, 1));
  $("card-close").addEventListener("click", hideCard);
  new ResizeObserver(resize).observe(map);
}
