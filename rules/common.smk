# Config validation, derived names, wildcard constraints and input functions.
import re

from knowledge_map.config import validate_config
from knowledge_map.corpus import vital_articles_path
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.identity import input_trigger, model_trigger
from knowledge_map.models import model_slug
from knowledge_map.provenance import results_config_hash
from knowledge_map.triggers import (
    RULE_MODULES,
    embedding_code_digest,
    file_digest,
    label_code_digest,
    question_code_digest,
    rule_code_digest,
)

try:
    validate_config(config)
except KnowledgeMapError as error:
    raise WorkflowError(str(error))

MODEL = model_slug(config["model"]["name"])
SHARDS = [f"{index:04d}" for index in range(config["shards"])]
RESULTS = "results"
MODEL_DIR = f"{RESULTS}/{MODEL}"
MAP_DIR = f"{MODEL_DIR}/map"
# The site's data: one folder per model (the same name as in results/), listed by site/data/index.json.
SITE_DATA = "site/data"
SITE_MAP_DIR = f"{SITE_DATA}/{MODEL}"
EMBED_CODE = embedding_code_digest(workflow.source_path("../scripts/embed_shard.py"))
QUESTION_CODE = question_code_digest(
    workflow.source_path("../scripts/embed_questions.py")
)
# The config, validated (defaults filled in), without where and how fast it runs: provenance.json records it.
CONFIG_SHA256 = results_config_hash(config)
LABEL_CODE = label_code_digest(workflow.source_path("../scripts/cell_labels.py"))
# Every later rule: the package code that decides its output (knowledge_map/triggers.py, RULE_MODULES).
RULE_CODE = {
    name: rule_code_digest(name, workflow.source_path(f"../scripts/{name}.py"))
    for name in RULE_MODULES
}
# Converted (and int8) models and engine records, shared by every job that embeds (docs/embedding.md, Starting the engine).
OPENVINO_CACHE = f"{RESULTS}/cache/openvino"
# The model's files (a local folder's digest, cached by mtime; a hub id as such): see knowledge_map/identity.py.
MODEL_FILES = model_trigger(
    config["model"]["name"], ".snakemake/knowledge-map/model-file-digests.json"
)


wildcard_constraints:
    model=re.escape(MODEL),
    shard="|".join(SHARDS),


# Data shipped inside a package (the default corpus and questions) is not a
# declared input: its path changes whenever the package is installed or the
# repo checked out elsewhere, and Snakemake's input trigger would then redo
# the corpus and re-embed every shard.  The rule gets the file's content
# digest as a param instead, and its script finds the file itself.
# The user's files are inputs, marked ancient(): they count by content (the
# same digest params), so a touch, a git checkout or a re-download of the
# same bytes redoes nothing (a touched corpus re-embedded every shard).


def get_corpus_input(wildcards):
    """The corpus file prepare_corpus reads: corpus.path; none for the packaged default."""
    if config["corpus"]["source"] == "vital-articles":
        return []
    return ancient(config["corpus"]["path"])


# User input files' content digests (cached by path, size, inode and mtime): see knowledge_map/identity.py.
INPUT_DIGESTS = ".snakemake/knowledge-map/input-file-digests.json"


def get_corpus_digest(wildcards):
    """Content digest of the corpus: the packaged default's, or the user's file's (an older replacement counts too)."""
    if config["corpus"]["source"] == "vital-articles":
        return file_digest(vital_articles_path())
    return input_trigger(config["corpus"]["path"], INPUT_DIGESTS)


def get_questions_input(wildcards):
    """The questions file: config questions; none for the set shipped with the package."""
    return ancient(config["questions"]) if config["questions"] else []


def get_responses_input(wildcards):
    """Past answers for calibration and validation: config responses; none without it."""
    return ancient(config["responses"]) if config["responses"] else []


def get_questions_digest(wildcards):
    """Content digest of the questions: the packaged set's, or the user's file's (an older replacement counts too)."""
    from knowledge_map.questions import default_questions_path

    if config["questions"]:
        return input_trigger(config["questions"], INPUT_DIGESTS)
    return file_digest(default_questions_path())


def get_responses_digest(wildcards):
    """Content digest of the past answers file, when there is one (an older replacement counts too)."""
    return input_trigger(config["responses"], INPUT_DIGESTS)


def get_shards(wildcards):
    """Every shard file of the configured model, in shard order."""
    return expand(f"{MODEL_DIR}/shards/shard-{{shard}}.h5", shard=SHARDS)


def get_provenance_inputs(wildcards):
    """Every artifact whose checksum goes into provenance.json, by name."""
    shards = {
        f"shard-{shard}": path for shard, path in zip(SHARDS, get_shards(wildcards))
    }
    return {
        "corpus_manifest": f"{RESULTS}/corpus.manifest.json",
        "corpus": f"{RESULTS}/corpus.parquet",
        **shards,
        "embeddings": f"{MODEL_DIR}/embeddings.h5",
        "coords": f"{MAP_DIR}/coords.h5",
        "questions": f"{MAP_DIR}/questions.json",
        "cell_labels": f"{MAP_DIR}/cell_labels.json",
        "metrics": f"{MAP_DIR}/metrics.json",
        "figure": f"{MAP_DIR}/map.png",
        "question_embeddings": f"{MODEL_DIR}/questions.h5",
        "knowledge_lists": f"{MAP_DIR}/knowledge_lists.h5",
        "calibration": f"{RESULTS}/calibration.json",
        **get_validation_outputs(),
    }


def get_validation_outputs():
    """The validation target's files, by name: only when config responses is set."""
    if not config["responses"]:
        return {}
    return {
        "validation_predictions": f"{MODEL_DIR}/validation/predictions.csv",
        "validation_summary": f"{MODEL_DIR}/validation/summary.json",
    }


def get_final_outputs():
    """What `snakemake` builds by default: every map artifact and the site."""
    return [
        f"{MODEL_DIR}/embeddings.h5",
        f"{MAP_DIR}/coords.h5",
        f"{MAP_DIR}/questions.json",
        f"{MAP_DIR}/cell_labels.json",
        f"{MAP_DIR}/metrics.json",
        f"{MAP_DIR}/map.png",
        f"{MODEL_DIR}/provenance.json",
        f"{SITE_MAP_DIR}/manifest.json",
        *get_validation_outputs().values(),
    ]
