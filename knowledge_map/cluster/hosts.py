"""The tensor profile's ``hosts.yaml``: GPU servers, their GPU counts and timeouts, and the order to try them in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from knowledge_map.errors import KnowledgeMapError

#: The host name of jobs that run on this machine (CPU jobs).
LOCAL = "local"
HOST_KEYS = {"gpus", "python", "root", "slots_dir"}
TOP_KEYS = {"hosts", "shared_fs", "python", "root", "slots_dir", "ssh_config", "timeouts"}


@dataclass(frozen=True)
class Timeouts:
    """Seconds: ``connect`` (TCP and ssh handshake), ``command`` (one command on a host), ``transfer``
    (one rsync), ``set_aside`` (how long a host that failed to take a job is passed over)."""

    connect: float = 10
    command: float = 120
    transfer: float = 3600
    set_aside: float = 300


@dataclass(frozen=True)
class Host:
    """One GPU server: its ssh alias, GPU count and where jobs live on it."""

    name: str
    gpus: int
    python: str = "python3"
    root: str = "~/knowledge-map-jobs"
    slots_dir: str = "/tmp/knowledge-map-gpu-slots"


@dataclass(frozen=True)
class Cluster:
    """The contents of a profile's ``hosts.yaml``."""

    hosts: tuple[Host, ...]
    shared_fs: bool = False
    ssh_config: str | None = None
    source: str = ""
    timeouts: Timeouts = Timeouts()

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KnowledgeMapError(f"{self.source}: no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")


def parse_hosts(data: dict, source: str = "hosts.yaml") -> Cluster:
    """Check and read a hosts mapping: ``{hosts: {alias: gpus | {gpus, python, root, slots_dir}}, ...}``.

    Top-level ``python``, ``root`` and ``slots_dir`` are defaults for every
    host; a host's own mapping overrides them.
    """
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict) or not data["hosts"]:
        raise KnowledgeMapError(f"{source}: expected a 'hosts:' mapping of ssh alias -> GPU count")
    unknown = set(data) - TOP_KEYS
    if unknown:
        allowed = ", ".join(sorted(TOP_KEYS))
        raise KnowledgeMapError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    defaults = {key: data[key] for key in ("python", "root", "slots_dir") if data.get(key) is not None}
    hosts = []
    for name, spec in data["hosts"].items():
        spec = {"gpus": spec} if not isinstance(spec, dict) else spec
        unknown = set(spec) - HOST_KEYS
        if unknown:
            raise KnowledgeMapError(f"{source}: host {name}: unknown key(s) {', '.join(sorted(unknown))}")
        gpus = spec.get("gpus")
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
            raise KnowledgeMapError(f"{source}: host {name}: gpus must be a whole number >= 1, got {gpus!r}")
        if name == LOCAL or not isinstance(name, str) or name.startswith("-") or not name.strip():
            raise KnowledgeMapError(f"{source}: {name!r} cannot be a host alias")
        hosts.append(Host(name=name, **{**defaults, **spec}))
    shared = data.get("shared_fs", False)
    if not isinstance(shared, bool):
        raise KnowledgeMapError(f"{source}: shared_fs must be true or false, got {shared!r}")
    ssh_config = data.get("ssh_config")
    if ssh_config is not None:
        ssh_config = str(Path(source).parent / os.path.expanduser(ssh_config))
    return Cluster(tuple(hosts), shared, ssh_config, source, parse_timeouts(data.get("timeouts") or {}, source))


def parse_timeouts(data: dict, source: str) -> Timeouts:
    """``timeouts: {connect, command, transfer, set_aside}`` (seconds, each optional) from hosts.yaml."""
    allowed = set(Timeouts.__dataclass_fields__)
    if not isinstance(data, dict) or set(data) - allowed:
        raise KnowledgeMapError(f"{source}: timeouts must be a mapping of {', '.join(sorted(allowed))} to seconds")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise KnowledgeMapError(f"{source}: timeouts.{key} must be a number of seconds > 0, got {value!r}")
    return Timeouts(**data)


def load_hosts(path: str | os.PathLike) -> Cluster:
    """Read and check a profile's ``hosts.yaml``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise KnowledgeMapError(f"cannot read the tensor hosts file {path}: {error.strerror}") from error
    return parse_hosts(data, str(path))


def rank_hosts(cluster: Cluster, active: dict[str, int], aside: frozenset[str] = frozenset()) -> list[Host]:
    """Hosts in the order to try: most free GPUs (GPUs minus ``active`` jobs there) first, ties by listing order.

    Hosts set ``aside`` (they recently failed to take a job) come last: they
    are tried only when every other host fails too.  With ``--jobs`` equal
    to the total GPU count every GPU gets a job; when all are busy a job
    still goes to the least-loaded host and waits there for a GPU slot.
    """
    def preference(host: Host):
        return (host.name in aside, -(host.gpus - active.get(host.name, 0)), cluster.hosts.index(host))

    return sorted(cluster.hosts, key=preference)


def choose_host(cluster: Cluster, active: dict[str, int], aside: frozenset[str] = frozenset()) -> Host:
    """The first host of :func:`rank_hosts`."""
    return rank_hosts(cluster, active, aside)[0]
