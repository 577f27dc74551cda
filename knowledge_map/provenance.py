"""What made an artifact: package versions, config hashes, checksums.

Every output of the workflow carries a provenance record so a reviewer can
tell exactly which code, model, data and settings produced a map.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from typing import Any

#: The packages whose versions can change an embedding or a map.
TRACKED_PACKAGES = (
    "knowledge-map",
    "torch",
    "sentence-transformers",
    "transformers",
    "umap-learn",
    "pynndescent",
    "numba",
    "openvino",
    "numpy",
    "scikit-learn",
    "h5py",
    "pyarrow",
    "snakemake",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` plus Python's; missing packages are reported as such."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of a config's canonical JSON: equal settings give equal hashes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: Settings of where and how fast a run goes, not of what it makes (embed_shard leaves them out of its params):
#: switching profile, device or batch size reruns nothing, provenance.json included.  Each shard records its device.
RUN_SETTINGS = (("model", "device"), ("model", "batch_size"), ("model", "compile"))


def results_config_hash(config: dict[str, Any]) -> str:
    """:func:`config_hash` without :data:`RUN_SETTINGS`: provenance.json's rerun trigger."""
    import copy

    results = copy.deepcopy(config)
    for section, key in RUN_SETTINGS:
        results.get(section, {}).pop(key, None)
    return config_hash(results)


def provenance(config: dict[str, Any] | None = None, /, **extra: Any) -> dict[str, Any]:
    """A provenance record: versions, platform and, when given, the config and its hash."""
    record: dict[str, Any] = {
        "versions": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
    if config is not None:
        record["config_sha256"] = config_hash(config)
    record.update(extra)
    return record


def file_checksums(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """sha256 and size of each named file."""
    from knowledge_map.io import sha256_file

    return {name: {"path": path, "sha256": sha256_file(path), "bytes": os.path.getsize(path)} for name, path in paths.items()}


def map_provenance(config: dict[str, Any], corpus_manifest: dict[str, Any], shard_attrs: dict[str, Any],
                   artifacts: dict[str, str]) -> dict[str, Any]:
    """The record a reviewer reads: what data, model, code and settings made this map, and the checksums
    of everything it produced."""
    model = {
        key: shard_attrs.get(key)
        for key in ("model", "model_path", "weights_sha256", "model_sha256", "dim", "max_seq_length", "prompt",
                    "device", "dtype", "backend", "precision", "quantization")
    }
    guard = shard_attrs.get("int8_guard")
    model["int8_guard"] = json.loads(guard) if guard else None
    # Per shard: the CUDA compile record where the shard compiled its blocks (merged attrs only).
    model["compiled"] = json.loads(shard_attrs.get("shard_compiled") or "null")
    return provenance(
        config,
        config=config,
        corpus={key: corpus_manifest.get(key) for key in ("source", "input", "input_sha256", "count", "limit")},
        model=model,
        shard_versions=json.loads(shard_attrs.get("versions", "{}")),
        # Every shard's software and device, grouped (merged attrs; one group unless hosts differed).
        shard_software=json.loads(shard_attrs.get("shard_software") or "null"),
        artifacts=file_checksums(artifacts),
    )
