// Quiz state: one question at a time. The next question is chosen by a
// chooser (heat-ui.js passes the most informative one, knowledge.js), among the
// questions neither answered nor skipped; a skipped question comes back once
// nothing else is left. A focus (a mask of articles) makes the chooser ask
// about that area. The UI lives in quiz-ui.js.

export class Quiz {
  /** choose(exclude: Set, focus) -> question index or null; without one, file order. */
  constructor(questions, choose = null) {
    this.questions = questions;
    this.choose = choose;
    this.focus = null;
    this.reset();
  }

  reset() {
    this.answers = []; // [{q, option}] in answering order
    this.skipped = []; // question indices, oldest skip first
    this.focus = null;
    this.current = this.nextQuestion();
  }

  isAnswered(q) {
    return this.answers.some((a) => a.q === q);
  }

  /** The chooser's pick among questions neither answered nor skipped, else the oldest skipped one, else null. */
  nextQuestion() {
    const exclude = new Set([...this.answers.map((a) => a.q), ...this.skipped]);
    if (exclude.size < this.questions.length) {
      const chosen = this.choose ? this.choose(exclude, this.focus) : null;
      if (chosen !== null && !exclude.has(chosen)) return chosen;
      for (let q = 0; q < this.questions.length; q++) if (!exclude.has(q)) return q;
    }
    const waiting = this.skipped.filter((q) => !this.isAnswered(q));
    return waiting.length ? waiting[0] : null;
  }

  /** Answer the current question with an option index; returns whether it was right. */
  answer(option) {
    const q = this.current;
    if (q === null || this.isAnswered(q)) return null;
    this.answers.push({ q, option });
    this.skipped = this.skipped.filter((s) => s !== q);
    return option === this.questions[q].correctIndex;
  }

  /** Move on after an answer (or a skip) to the next question. */
  advance() {
    this.current = this.nextQuestion();
  }

  skip() {
    if (this.current === null) return;
    this.skipped = this.skipped.filter((s) => s !== this.current).concat([this.current]);
    this.current = this.nextQuestion();
  }

  /** Ask about the articles in mask (a Uint8Array over articles), or the whole map (null). */
  setFocus(mask) {
    this.focus = mask;
    if (this.current === null || !this.isAnswered(this.current)) this.current = this.nextQuestion();
  }

  /** Replace the answers (from a share link) and pick the next question. */
  restore(answers) {
    this.answers = answers.filter((a, i) => a.q < this.questions.length && answers.findIndex((b) => b.q === a.q) === i);
    this.skipped = [];
    this.current = this.nextQuestion();
  }

  correctCount() {
    return this.answers.filter((a) => a.option === this.questions[a.q].correctIndex).length;
  }

  /** Answers as evidence for the estimate: [{q, correct}] in answering order. */
  evidence() {
    return this.answers.map((a) => ({ q: a.q, correct: a.option === this.questions[a.q].correctIndex }));
  }
}
