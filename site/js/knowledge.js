// What the learner probably knows, the next question to ask and what to read
// next: the same computations, in the same order, as knowledge_map/knowledge.py
// and knowledge_map/selection.py (browser tests check they agree to 1e-6).
//
// A Rasch model with a local ability: P(right on q) = sigma(theta(x_q) - b_q).
// theta at an article is the MAP ability from the answers j, each weighted by
// the kernel w_j between the answered question and the article (an entry of
// the question's neighbour list), with a Gaussian prior of precision
// lambda = prior_weight / 4 centred at the learner's overall ability a (the
// same model over all answers at weight 1, prior precision ABILITY_PRECISION;
// a = 0 before any answer), by NEWTON_STEPS safeguarded Newton steps from a,
// within |theta| <= THETA_MAX.

export const NEWTON_STEPS = 25;
export const THETA_MAX = 8.0;
export const STEP_MAX = 4.0;
export const ABILITY_PRECISION = 1.0;

export function sigmoid(z) {
  return 1.0 / (1.0 + Math.exp(-z));
}

/** Neighbour lists from knowledge.bin: {offsets: Uint32Array, rows: Uint32Array, weights: Float32Array}. */
export function parseLists(buffer, layout) {
  return {
    offsets: new Uint32Array(buffer, layout.offsets_offset, layout.questions + 1),
    rows: new Uint32Array(buffer, layout.rows_offset, layout.entries),
    weights: new Float32Array(buffer, layout.weights_offset, layout.entries),
    questions: layout.questions,
  };
}

/**
 * MAP ability from entries lo..hi-1 of (w, c, b) under a prior N(mean, 1/precision):
 * Newton's steps of at most STEP_MAX, safeguarded by the bracket the gradient's
 * sign gives (a step leaving it bisects it), as knowledge.py's local_ability.
 */
export function solveAbility(w, c, b, lo, hi, precision, mean) {
  const centre = Math.min(THETA_MAX, Math.max(-THETA_MAX, mean));
  let t = centre;
  let low = -THETA_MAX - 1.0; // just past the bounds: no end evaluated yet, so a first step may reach a bound
  let high = THETA_MAX + 1.0;
  for (let step = 0; step < NEWTON_STEPS; step++) {
    let g = 0;
    let h = 0;
    for (let k = lo; k < hi; k++) {
      const p = sigmoid(t - b[k]);
      g += w[k] * (c[k] - p);
      h += w[k] * p * (1.0 - p);
    }
    g -= precision * (t - centre);
    h += precision;
    if (g > 0) low = t;
    if (g < 0) high = t;
    const next = Math.min(THETA_MAX, Math.max(-THETA_MAX, t + Math.min(STEP_MAX, Math.max(-STEP_MAX, g / h))));
    const keep = (next > low && next < high) || next === t; // (next === t: converged)
    t = keep ? next : Math.min(THETA_MAX, Math.max(-THETA_MAX, 0.5 * (low + high)));
  }
  return t;
}

/** The learner's overall ability from answers [{q, correct}] (each of weight 1), as knowledge.py's overall_ability. */
export function overallAbility(answers, difficulty) {
  const m = answers.length;
  if (m === 0) return 0.0;
  const w = new Float64Array(m).fill(1.0);
  const c = Float64Array.from(answers, (a) => (a.correct ? 1 : 0));
  const b = Float64Array.from(answers, (a) => difficulty[a.q]);
  return solveAbility(w, c, b, 0, m, ABILITY_PRECISION, 0.0);
}

/**
 * The estimate over n articles after answers [{q, correct}] (in answering order).
 * Returns {theta, information, evidence, known, value} (Float64Array each) and
 * overall, the learner's overall ability (where theta rests without local evidence).
 */
export function articleState(lists, answers, difficulty, priorWeight, meanDifficulty, n) {
  const precision = priorWeight / 4.0;
  const overall = overallAbility(answers, difficulty);
  const theta = new Float64Array(n).fill(overall);
  const information = new Float64Array(n).fill(precision);
  const evidence = new Float64Array(n);
  const known = new Float64Array(n);
  const value = new Float64Array(n).fill(sigmoid(overall - meanDifficulty));
  // Entries per article, in answering order: CSR over the touched articles.
  const count = new Uint32Array(n);
  for (const a of answers) {
    for (let e = lists.offsets[a.q]; e < lists.offsets[a.q + 1]; e++) count[lists.rows[e]]++;
  }
  const start = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) start[i + 1] = start[i] + count[i];
  const total = start[n];
  const entryW = new Float64Array(total);
  const entryC = new Float64Array(total);
  const entryB = new Float64Array(total);
  const fill = start.slice(0, n);
  for (const a of answers) {
    const c = a.correct ? 1 : 0;
    const b = difficulty[a.q];
    for (let e = lists.offsets[a.q]; e < lists.offsets[a.q + 1]; e++) {
      const i = lists.rows[e];
      const k = fill[i]++;
      entryW[k] = lists.weights[e];
      entryC[k] = c;
      entryB[k] = b;
    }
  }
  for (let i = 0; i < n; i++) {
    if (count[i] === 0) continue;
    const lo = start[i];
    const hi = start[i + 1];
    const t = solveAbility(entryW, entryC, entryB, lo, hi, precision, overall);
    let h = 0;
    let ev = 0;
    let kn = 0;
    for (let k = lo; k < hi; k++) {
      const p = sigmoid(t - entryB[k]);
      h += entryW[k] * p * (1.0 - p);
      ev += entryW[k];
      kn += entryW[k] * entryC[k];
    }
    theta[i] = t;
    information[i] = h + precision;
    evidence[i] = ev;
    known[i] = kn;
    value[i] = sigmoid(t - meanDifficulty);
  }
  return { theta, information, evidence, known, value, overall };
}

/** Expected reduction of the summed posterior variance from answering question q (focus: optional Uint8Array mask). */
export function questionGain(lists, q, state, difficulty, focus) {
  let gain = 0;
  for (let e = lists.offsets[q]; e < lists.offsets[q + 1]; e++) {
    const i = lists.rows[e];
    if (focus && !focus[i]) continue;
    const h = state.information[i];
    const p = sigmoid(state.theta[i] - difficulty);
    gain += 1.0 / h - 1.0 / (h + lists.weights[e] * p * (1.0 - p));
  }
  return gain;
}

/** The question (not in exclude, a Set) with the largest gain, lower index on ties; null if none. */
export function nextQuestion(lists, state, difficulties, exclude, focus) {
  let best = null;
  let bestGain = -Infinity;
  for (let q = 0; q < lists.questions; q++) {
    if (exclude.has(q)) continue;
    const gain = questionGain(lists, q, state, difficulties[q], focus);
    if (gain > bestGain) {
      best = q;
      bestGain = gain;
    }
  }
  return best;
}

/**
 * Rows of the count articles to read next: near what is known (else near what
 * was missed), not yet known; not the article an answered question is most tied to.
 */
export function readingList(state, lists, answers, priorWeight, count) {
  const exclude = new Set();
  for (const a of answers) if (lists.offsets[a.q + 1] > lists.offsets[a.q]) exclude.add(lists.rows[lists.offsets[a.q]]);
  let anyKnown = false;
  for (let i = 0; i < state.known.length; i++) {
    if (state.known[i] > 0) {
      anyKnown = true;
      break;
    }
  }
  const support = anyKnown ? state.known : state.evidence;
  const scored = [];
  for (let i = 0; i < support.length; i++) {
    if (support[i] <= 0 || exclude.has(i)) continue;
    const score = (support[i] / (support[i] + priorWeight)) * (1.0 - state.value[i]);
    if (score > 0) scored.push([score, i]);
  }
  scored.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return scored.slice(0, count).map(([, i]) => i);
}
