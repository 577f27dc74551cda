"""Validate a workflow config against the JSON schema, filling in defaults.

Errors are one line naming the key (``config: model.device: 'gpu' is not
one of ...``), and unknown keys are errors, so a typo is never silently
ignored.  ``integer`` means a whole number written as one: ``shards: 2.0``
is refused (JSON Schema would accept it, and Python's ``range`` would then
fail), and every string value obeys :mod:`knowledge_map.textsafety`.
"""

from __future__ import annotations

import copy
import math
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft7Validator, validators

from knowledge_map.errors import KnowledgeMapError
from knowledge_map.textsafety import string_problem


def schema() -> dict[str, Any]:
    """The config schema shipped with the package."""
    text = resources.files("knowledge_map").joinpath("schemas", "config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _with_defaults(validator_class):
    """A validator that also writes each property's default into the instance (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    def is_integer(checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    type_checker = validator_class.TYPE_CHECKER.redefine("integer", is_integer)
    return validators.extend(validator_class, {"properties": set_defaults}, type_checker=type_checker)


def _value_problems(value: Any, key: str = ""):
    """``(key, problem)`` for every string in ``value`` (nested dicts and lists) that cannot be stored, and every
    number that is not finite (a schema's ``minimum`` never refuses NaN: every comparison with it is false)."""
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            yield key, problem
    elif isinstance(value, float) and not math.isfinite(value):
        yield key, f"must be a finite number, got {value}"
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _value_problems(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _value_problems(item, f"{key}.{index}")


DefaultingValidator = _with_defaults(Draft7Validator)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults into ``config`` in place and check it; raise a one-line error naming the key."""
    errors = sorted(DefaultingValidator(schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise KnowledgeMapError(f"config: {key}: {error.message}")
    for key, problem in _value_problems(config):
        raise KnowledgeMapError(f"config: {key}: {problem}")
    if config["corpus"]["source"] == "file" and not config["corpus"]["path"]:
        raise KnowledgeMapError("config: corpus.path: required when corpus.source is 'file'")
    if config["corpus"]["source"] != "file" and config["corpus"]["path"]:
        # Else the packaged articles would be mapped (for hours) and the user's file never read.
        raise KnowledgeMapError(f"config: corpus.path: {config['corpus']['path']!r} is set but corpus.source is "
                                f"{config['corpus']['source']!r}, which does not read it; set corpus.source: file")
    model = config["model"]
    if model["compile"] is True and (model["device"] in ("cpu", "mps") or model["backend"] == "openvino"):
        # Known before any job runs; with device auto it is known only where the shard runs (gpu.resolve_compile).
        raise KnowledgeMapError(
            f"config: model.compile: true runs on CUDA with the torch engine only, but model.device is "
            f"{model['device']!r} and model.backend {model['backend']!r}"
        )
    return config
