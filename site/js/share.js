// The share link: answers and view live in the URL fragment, so a link
// reproduces the map state and nothing is sent to any server.
//   #a=<question>.<option>,<question>.<option>,...&v=<cx>,<cy>,<zoom>
// Both indices are decimal integers, so a question may have any number of
// options (at least two), not just four.

/** Fragment string for answers [{q, option}] (in answering order) and view {cx, cy, zoom}. */
export function encodeState(answers, view) {
  const parts = [];
  if (answers.length) parts.push("a=" + answers.map((a) => `${a.q}.${a.option}`).join(","));
  // Seven digits: a restored view is off by far less than a pixel, even zoomed in 1,000 times.
  if (view) parts.push(`v=${view.cx.toFixed(7)},${view.cy.toFixed(7)},${view.zoom.toPrecision(7)}`);
  return parts.length ? "#" + parts.join("&") : "";
}

/**
 * Answers and view from a fragment; anything malformed or out of range is
 * dropped (a link is user input). nQuestions bounds the question indices;
 * optionCounts (optional, one number per question) bounds each answer's
 * option index; a question answered twice keeps its first answer.
 */
export function decodeState(hash, nQuestions, optionCounts = null) {
  const params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
  const answers = [];
  const seen = new Set();
  for (const item of (params.get("a") || "").split(",")) {
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
  return { answers, view };
}
