// Quiz state: one question at a time; an answer is kept, a skipped question
// goes to the back of the queue. The UI lives in main.js.

export class Quiz {
  constructor(questions) {
    this.questions = questions;
    this.reset();
  }

  reset() {
    this.answers = []; // [{q, option}] in answering order
    this.skipped = []; // question indices, oldest skip first
    this.current = this.nextQuestion();
  }

  isAnswered(q) {
    return this.answers.some((a) => a.q === q);
  }

  /** First unanswered question not skipped, else the oldest skipped one, else null. */
  nextQuestion() {
    for (let q = 0; q < this.questions.length; q++) {
      if (!this.isAnswered(q) && !this.skipped.includes(q)) return q;
    }
    const waiting = this.skipped.filter((q) => !this.isAnswered(q));
    return waiting.length ? waiting[0] : null;
  }

  /** Answer the current question with option (0-3); returns whether it was right. */
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

  /** Replace the answers (from a share link) and pick the next question. */
  restore(answers) {
    this.answers = answers.filter((a, i) => a.q < this.questions.length && answers.findIndex((b) => b.q === a.q) === i);
    this.skipped = [];
    this.current = this.nextQuestion();
  }

  correctCount() {
    return this.answers.filter((a) => a.option === this.questions[a.q].correctIndex).length;
  }

  /** Answers as heatmap evidence: [{x, y, correct}]. */
  evidence() {
    return this.answers.map((a) => {
      const question = this.questions[a.q];
      return { x: question.x, y: question.y, correct: a.option === question.correctIndex };
    });
  }
}
