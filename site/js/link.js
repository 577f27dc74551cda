// Keeping the URL in step with the page: the fragment holds the answers and
// the view (share.js), the query the map on show (maps.js), so the address
// bar is always a link to what is on screen.
import { $ } from "./dom.js";
import { encodeState } from "./share.js";
import { state, view } from "./state.js";

/** Write the answers and view into the URL now (and into the share box when it is open). */
export function writeHash() {
  clearTimeout(state.hashTimer);
  const hash = encodeState(state.quiz.answers, { cx: view.cx, cy: view.cy, zoom: view.zoom }, state.manifest.questions_key);
  history.replaceState(null, "", location.pathname + location.search + hash);
  if (!$("share-box").hidden) $("share-url").value = location.href;
}

/** Write the URL after `delay` ms of quiet (panning and zooming ask for it many times a second). */
export function scheduleHashUpdate(delay = 300) {
  clearTimeout(state.hashTimer);
  state.hashTimer = setTimeout(() => {
    if (state.quiz) writeHash(); // still loading: the hash keeps what it had
  }, delay);
}

/** Forget a pending update (before the URL is set by hand). */
export function cancelHashUpdate() {
  clearTimeout(state.hashTimer);
}
