"""Shared fixtures: a small real corpus and one real end-to-end workflow run.

The small corpus is a stratified slice of the embedded vital articles: every
article a shipped question is about, a few per topic, plus hostile and
non-Latin titles that must survive the whole pipeline as plain text.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from daemons import snakemake_command

REPO = Path(__file__).resolve().parents[1]
#: Test scenarios, one folder each with its config.yaml (see config/README.md).
SCENARIOS = REPO / ".test"
#: The hostile-shell title creates PWNED and deletes CANARY if it ever reaches a shell; it never
#: names anything a test run could miss (an earlier version said `rm -rf ~`).
PWNED = "/tmp/pwned"
CANARY = "/tmp/knowledge-map-canary"
MODEL_SLUG = "all-MiniLM-L6-v2"
WIKIPEDIA_ATTRIBUTION = "Article text from Wikipedia, licensed CC BY-SA 4.0: https://creativecommons.org/licenses/by-sa/4.0/"

HOSTILE_ARTICLES = [
    {
        "id": "hostile-html",
        "title": "<img src=x onerror=alert(1)>",
        "text": "An article whose title is an HTML injection attempt; it must be shown as text.",
        "topic": "Technology",
    },
    {
        "id": "hostile-shell",
        "title": f"$(touch {PWNED}); rm -rf {CANARY} `id`",
        "text": "An article whose title is a shell injection attempt; it must never reach a shell.",
        "topic": "Technology",
    },
    {
        "id": "rtl-arabic",
        "title": "القاهرة — Cairo ‏(RTL)",
        "text": "Cairo is the capital of Egypt and its largest city, on the Nile.",
        "topic": "Geography",
    },
]


def spread_articles(count: int) -> list[str]:
    """``count`` vital articles evenly spread over the corpus (every topic, short and long), as embedded."""
    from knowledge_map.corpus import document_text, load_vital_articles

    records = load_vital_articles()
    rows = np.linspace(0, len(records) - 1, count).astype(int)
    return [document_text(records[r]["title"], records[r]["text"]) for r in rows]


def small_corpus_records(per_topic: int = 12) -> list[dict]:
    """Question source articles + ``per_topic`` articles of each topic + hostile titles, in a fixed order."""
    from knowledge_map.corpus import load_vital_articles
    from knowledge_map.questions import load_questions

    records = load_vital_articles()
    by_title = {r["title"]: r for r in records}
    chosen: dict[str, dict] = {}
    for question in load_questions():
        chosen[question["source_article"]] = by_title[question["source_article"]]
    taken: dict[str, int] = {}
    for record in records:
        topic = record["topic"]
        if taken.get(topic, 0) < per_topic and record["title"] not in chosen:
            chosen[record["title"]] = record
            taken[topic] = taken.get(topic, 0) + 1
    return [*chosen.values(), *HOSTILE_ARTICLES]


def write_jsonl(path: Path, records: list) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def scenario_config(name: str) -> dict:
    """``.test/<name>/config.yaml`` with its file paths made absolute (the tests run Snakemake in other folders)."""
    config = yaml.safe_load((SCENARIOS / name / "config.yaml").read_text())
    if config.get("corpus", {}).get("path"):
        config["corpus"]["path"] = str(REPO / config["corpus"]["path"])
    for key in ("questions", "responses"):
        if config.get(key):
            config[key] = str(REPO / config[key])
    return config


#: The GPU profiles' jobs here are given GPU slots (CUDA_VISIBLE_DEVICES) on a machine without CUDA, which
#: ``model.device: auto`` refuses as a broken node (knowledge_map.models.resolve_device): they embed on the CPU.
CPU_ON_FAKE_GPUS = {"device": "cpu"}


def small_config(corpus_path: Path, **overrides) -> dict:
    """The small-file scenario's config (``.test/small-file``) on ``corpus_path``, top-level keys replaced by ``overrides``."""
    config = scenario_config("small-file")
    config["corpus"]["path"] = str(corpus_path)
    config.update(overrides)
    return config


def run_snakemake(workdir: Path, config: dict | None = None, *args: str, check: bool = True,
                  timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run the real workflow in ``workdir`` with ``config`` written to workdir/test-config.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = None
    if config is not None:
        config_path = workdir / "test-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
    command = snakemake_command(workdir, *args, "-c2", configfile=config_path)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="session")
def small_corpus() -> Path:
    """The small slice as a JSONL corpus, ~200 real articles (see module docstring): the small-file scenario's file."""
    return SCENARIOS / "small-file" / "corpus.jsonl"


def write_responses(path: Path, learners: int = 8, sessions: int = 2, seed: int = 11) -> Path:
    """Past answers of simulated learners to the shipped questions (named by index: they have no ids).

    Session s asks questions 10 s .. 10 s + 9; a learner knows topics at random,
    so the answers have structure the validation can find.
    """
    from knowledge_map.questions import load_questions

    rng = np.random.default_rng(seed)
    questions = load_questions()
    topics = sorted({q["topic"] for q in questions})
    lines = ["learner,session,question,correct"]
    for learner in range(learners):
        knows = {t: rng.random() < 0.5 for t in topics}
        for session in range(sessions):
            for q in range(10 * session, 10 * session + 10):
                p = 0.85 if knows[questions[q]["topic"]] else 0.3
                lines.append(f"learner-{learner},lecture-{session + 1},{q},{int(rng.random() < p)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_responses(tmp_path_factory) -> Path:
    return write_responses(tmp_path_factory.mktemp("responses") / "responses.csv")


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory, small_corpus, small_responses) -> Path:
    """The workdir of one complete workflow run on the small corpus (3 shards), with past answers."""
    workdir = tmp_path_factory.mktemp("run")
    # The hostile-shell title would create this file if a title ever reached a shell.
    Path(PWNED).unlink(missing_ok=True)
    Path(CANARY).mkdir(exist_ok=True)
    run_snakemake(workdir, small_config(small_corpus, responses=str(small_responses), validation={"permutations": 100}))
    return workdir


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium, one for the whole session (Playwright's sync API allows one at a time)."""
    from knowledge_map.devtools.siteserver import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def module_page(chromium):
    """A page on the tracked site/ folder, served as it is, to import its modules into: no workflow run."""
    from knowledge_map.devtools.siteserver import SITE_DIR, serve

    with serve(SITE_DIR) as url:
        page = chromium.new_page()
        page.goto(url + "js/knowledge.js")  # any same-origin URL: the modules are imported from it
        yield page
        page.close()
