// The share link: answers and view live in the URL fragment, so a link
// reproduces the map state and nothing is sent to any server.
//   #a=<question>.<option>,<question>.<option>,...&q=<questions key>&v=<cx>,<cy>,<zoom>
// Both indices are decimal integers, so a question may have any number of
// options (at least two), not just four. The questions key (manifest
// questions_key: a digest of the questions and their options) says which
// questions the indices mean; a link made for other questions keeps its view
// but not its answers.

/** Fragment string for answers [{q, option}] (in answering order), view {cx, cy, zoom} and the questions key. */
export function encodeState(answers, view, questionsKey = null) {
  const parts = [];
  if (answers.length) parts.push("a=" + answers.map((a) => `${a.q}.${a.option}`).join(","));
  if (answers.length && questionsKey) parts.push(`q=${encodeURIComponent(questionsKey)}`);
  // Seven digits: a restored view is off by far less than a pixel, even zoomed in 1,000 times.
  if (view) parts.push(`v=${view.cx.toFixed(7)},${view.cy.toFixed(7)},${view.zoom.toPrecision(7)}`);
  return parts.length ? "#" + parts.join("&") : "";
}

/**
 * Answers and view from a fragment; anything malformed or out of range is
 * dropped (a link is user input). nQuestions bounds the question indices;
 * optionCounts (optional, one number per question) bounds each answer's
 * option index; a question answered twice keeps its first answer. With
 * questionsKey, answers whose link names another questions key are dropped
 * (foreign: true): they were given to other questions.
 */
export function decodeState(hash, nQuestions, optionCounts = null, questionsKey = null) {
  const params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
  const answers = [];
  const seen = new Set();
  const foreign = Boolean(questionsKey && params.has("a") && params.has("q") && params.get("q") !== questionsKey);
  for (const item of foreign ? [] : (params.get("a") || "").split(",")) {
    const m = /^(\d{1,6})\.(\d{1,6})$/.exec(item);
    if (!m) continue;
    const q = Number(m[1]);
    const option = Number(m[2]);
    if (q >= nQuestions || seen.has(q)) continue;
    if (optionCounts && !(option < optionCounts[q])) continue;
    seen.add(q);
    answers.push({ q, option });
  }
  let view = null;
  const v = (params.get("v") || "").split(",").map(Number);
  if (v.length === 3 && v.every(Number.isFinite) && v[2] > 0) view = { cx: v[0], cy: v[1], zoom: v[2] };
  return { answers, view, foreign };
}
