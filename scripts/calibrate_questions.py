"""Rule calibrate_questions: questions (+ past answers) -> results/calibration.json (difficulty per question)."""

from knowledge_map.calibration import Calibration, fit_rasch
from knowledge_map.io import write_json
from knowledge_map.questions import load_questions, question_keys
from knowledge_map.responses import read_responses
from knowledge_map.workflow import run_rule


def main(snakemake):
    questions = load_questions(snakemake.input.questions or None)  # none: the packaged set
    if snakemake.input.responses:
        answers = read_responses(snakemake.input.responses, questions)
        calibration = fit_rasch(answers.person(), answers.question, answers.correct, len(questions))
        source = str(snakemake.input.responses)
    else:
        calibration, source = Calibration.uncalibrated(len(questions)), None
    write_json(snakemake.output[0], calibration.to_json(question_keys(questions), source))


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
