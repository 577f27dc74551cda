// Share and reset: the share button puts the link to this map, these answers
// and this view in a box (and on the clipboard where allowed); opening a link,
// or editing its fragment, restores that state; reset clears it.
import { hideCard } from "./card.js";
import { $, setStatus } from "./dom.js";
import { requestRender } from "./draw.js";
import { NO_ANSWERS, updateHeat } from "./heat-ui.js";
import { cancelHashUpdate, writeHash } from "./link.js";
import { hideFocusNote, renderQuiz } from "./quiz-ui.js";
import { decodeState } from "./share.js";
import { state, view } from "./state.js";

const FOREIGN_LINK = "This link's answers were given to other questions than this map's, so they were not restored.";

/** Answers and view from the URL fragment (anything malformed or out of range is dropped). */
export function restoreFromHash() {
  const questions = state.quiz.questions;
  const counts = questions.map((q) => q.options.length);
  const { answers, view: saved, foreign } = decodeState(location.hash, questions.length, counts, state.manifest.questions_key);
  if (foreign) setStatus(FOREIGN_LINK);
  else if ($("status").textContent === FOREIGN_LINK) setStatus("");
  state.quiz.restore(answers);
  if (saved) view.set(saved.cx, saved.cy, saved.zoom);
  updateHeat(); // the estimate first: the chooser picks the next question from it
  state.quiz.advance();
  renderQuiz();
}

function share() {
  const box = $("share-box");
  box.hidden = false;
  writeHash();
  const field = $("share-url");
  field.focus();
  field.select();
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).catch(() => {});
}

function reset() {
  cancelHashUpdate();
  state.quiz.reset();
  setStatus("");
  updateHeat();
  state.quiz.advance();
  hideFocusNote();
  state.highlight = -1;
  hideCard();
  view.set(0.5, 0.5, 1);
  history.replaceState(null, "", location.pathname + location.search);
  $("share-box").hidden = true;
  $("search-input").value = "";
  renderQuiz();
  $("heat-readout").textContent = NO_ANSWERS;
}

export function installShareAndReset() {
  $("share-button").addEventListener("click", share);
  $("reset-button").addEventListener("click", reset);
  window.addEventListener("hashchange", () => {
    restoreFromHash();
    requestRender();
  });
}
