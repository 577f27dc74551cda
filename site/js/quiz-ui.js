// The quiz panel: the current question and its options as buttons, feedback
// after an answer, skip and next, and "ask about the area in view" (a focus
// mask for the chooser). The quiz's logic is quiz.js.
import { $ } from "./dom.js";
import { requestRender } from "./draw.js";
import { readout, updateHeat } from "./heat-ui.js";
import { scheduleHashUpdate } from "./link.js";
import { state, view } from "./state.js";

function progressText(quiz) {
  return `${quiz.answers.length} of ${quiz.questions.length} answered · ${quiz.correctCount()} right`;
}

/** Show the current question (or the end of the quiz). */
export function renderQuiz() {
  const quiz = state.quiz;
  $("quiz-progress").textContent = progressText(quiz);
  const options = $("quiz-options");
  options.replaceChildren();
  $("quiz-feedback").textContent = "";
  $("quiz-next").hidden = true;
  if (quiz.current === null) {
    $("quiz-question").textContent = quiz.questions.length ? "All questions answered. Reset to start again." : "No questions.";
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
  $("quiz-progress").textContent = progressText(quiz);
  $("quiz-skip").hidden = true;
  $("quiz-next").hidden = false;
  $("quiz-next").focus();
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

/** Hide the focus buttons' state (after a reset). */
export function hideFocusNote() {
  $("quiz-unfocus").hidden = true;
  $("quiz-focus-note").hidden = true;
}

function rerender() {
  renderQuiz();
  requestRender();
}

export function installQuiz() {
  $("quiz-skip").addEventListener("click", () => {
    state.quiz.skip();
    rerender();
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
    rerender();
  });
  $("quiz-unfocus").addEventListener("click", () => {
    state.quiz.setFocus(null);
    hideFocusNote();
    rerender();
  });
  $("quiz-next").addEventListener("click", () => {
    state.quiz.advance();
    rerender();
    const first = $("quiz-options").querySelector("button");
    if (first) first.focus();
  });
  document.addEventListener("pointermove", (event) => {
    state.lastPointer = [event.clientX, event.clientY];
  });
}
