"""Config validation: defaults filled in, errors naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from knowledge_map.config import schema, validate_config
from knowledge_map.errors import KnowledgeMapError


def shipped():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_shipped_config_is_valid_and_complete():
    config = validate_config(shipped())
    assert config["model"]["name"] == "all-MiniLM-L6-v2"
    assert config["shards"] == 4


def test_empty_config_gets_every_default():
    assert validate_config({}) == validate_config(shipped())


def test_partial_sections_keep_other_defaults():
    config = validate_config({"model": {"batch_size": 8}})
    assert config["model"]["batch_size"] == 8
    assert config["model"]["max_seq_length"] == 256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shards": -1}, r"config: shards: -1 is less than the minimum of 1"),
        ({"shards": "four"}, r"config: shards: 'four' is not of type 'integer'"),
        ({"sharts": 4}, r"config: \(top level\): Additional properties are not allowed \('sharts' was unexpected\)"),
        ({"model": {"device": "gpu"}}, r"config: model.device: 'gpu' is not one of"),
        ({"umap": {"n_neigbors": 5}}, r"config: umap: Additional properties .*'n_neigbors'"),
        ({"labels": {"levels": [0]}}, r"config: labels.levels.0: 0 is less than the minimum of 1"),
        ({"corpus": {"source": "file"}}, r"config: corpus.path: required when corpus.source is 'file'"),
        ({"model": {"compile": True, "device": "cpu"}}, r"config: model.compile: true runs on CUDA .*device is 'cpu'"),
        ({"model": {"compile": True, "backend": "openvino"}}, r"config: model.compile: true .*backend 'openvino'"),
        # YAML's .nan passes every minimum/maximum (comparisons with NaN are false) and broke placement hours later
        ({"heatmap": {"temperature": float("nan")}}, r"config: heatmap.temperature: must be a finite number, got nan"),
        ({"umap": {"min_dist": float("inf")}}, r"config: umap.min_dist: inf is greater than the maximum of 1"),
        ({"placement": {"temperature": float("-inf")}}, r"config: placement.temperature: .*"),
        ({"umap": {"metric": "cosin"}}, r"config: umap.metric: 'cosin' is not one of \['cosine', 'euclidean'"),
        # The packaged articles would be mapped, and the user's file never read.
        ({"corpus": {"path": "mine.jsonl"}}, r"config: corpus.path: 'mine.jsonl' is set but corpus.source is "
                                             r"'vital-articles', which does not read it; set corpus.source: file"),
        # umap-learn refuses it (a traceback at umap_map, after the embedding).
        ({"umap": {"random_state": 2**32}}, r"config: umap.random_state: 4294967296 is greater than the maximum"),
        # An unset variable in a templated config: '' meant the packaged questions.
        ({"questions": ""}, r"config: questions: '' should be non-empty"),
        ({"responses": ""}, r"config: responses: '' should be non-empty"),
    ],
)
def test_bad_config_names_the_key(change, message):
    config = copy.deepcopy(shipped())
    for key, value in change.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    with pytest.raises(KnowledgeMapError, match=message):
        validate_config(config)


def test_allowed_model_values_are_the_schemas():
    """models.py's lists of allowed values are the schema's enums (the schema is the source)."""
    from knowledge_map import models
    from knowledge_map.gpu import COMPILE_SETTINGS

    properties = schema()["properties"]["model"]["properties"]
    for key, allowed in (("device", models.DEVICES), ("dtype", models.DTYPES), ("backend", models.BACKENDS),
                         ("cpu_precision", models.CPU_PRECISIONS), ("compile", COMPILE_SETTINGS)):
        assert tuple(properties[key]["enum"]) == allowed, f"model.{key}: schema {properties[key]['enum']} vs models.py"

