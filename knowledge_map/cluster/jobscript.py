"""Snakemake jobscripts: read the properties and command, and move their paths to a host."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field

from knowledge_map.errors import KnowledgeMapError


@dataclass
class Jobscript:
    """What Snakemake's cluster-generic executor hands the submit command."""

    properties: dict
    command: str
    path: str = ""
    tokens: list[str] = field(default_factory=list)

    @property
    def workdir(self) -> str:
        """The folder the job runs in (the jobscript starts with ``cd <workdir> &&``)."""
        if len(self.tokens) < 2 or self.tokens[0] != "cd":
            raise KnowledgeMapError(f"jobscript {self.path}: expected it to start with 'cd <workdir>'")
        return self.tokens[1]

    def option(self, name: str) -> list[str]:
        """The values after ``--name`` up to the next option or shell operator."""
        if name not in self.tokens:
            return []
        values = []
        for token in self.tokens[self.tokens.index(name) + 1 :]:
            if token.startswith("--") or token in OPERATORS:
                break
            values.append(token)
        return values

    @property
    def snakefile(self) -> str:
        return self.option("--snakefile")[0]

    @property
    def gpus(self) -> int:
        return int(self.properties.get("resources", {}).get("gpu", 0) or 0)


OPERATORS = ("&&", "||", ";", "|")


def parse_jobscript(text: str, path: str = "") -> Jobscript:
    """Read the properties line and the command line of a Snakemake jobscript."""
    properties, command = None, None
    for line in text.splitlines():
        if line.startswith("# properties = "):
            properties = json.loads(line[len("# properties = ") :])
        elif line.strip() and not line.startswith("#"):
            command = line.strip()
    if properties is None or command is None:
        raise KnowledgeMapError(f"jobscript {path}: no '# properties' line or no command (not a Snakemake jobscript?)")
    return Jobscript(properties, command, path, shlex.split(command))


def rewrite_command(job: Jobscript, work: str, mirror: str, python: str) -> str:
    """The jobscript's command with local absolute paths moved to the host.

    Paths inside the local workdir go to the job's folder ``work``; every
    other absolute path goes under ``mirror`` (same path, new root); the
    Python that runs Snakemake becomes the host's ``python``.
    """
    out = []
    for index, token in enumerate(job.tokens):
        if token in OPERATORS:
            out.append(token)
        elif index > 0 and job.tokens[index - 1] == "&&" and job.tokens[index - 3 : index - 1][:1] == ["cd"]:
            out.append(shlex.quote(python))
        else:
            out.append(shlex.quote(map_path(token, job.workdir, work, mirror)))
    return " ".join(out)


def map_path(path: str, workdir: str, work: str, mirror: str) -> str:
    """Where local absolute ``path`` lives on the host: under the job folder ``work`` or under ``mirror``."""
    workdir = workdir.rstrip("/")
    if path == workdir or path.startswith(workdir + "/"):
        return work + path[len(workdir) :]
    if path.startswith("/"):
        return mirror.rstrip("/") + path
    return path


def staged_paths(job: Jobscript) -> list[str]:
    """Local absolute paths a host needs for ``job``: the source folder, config files and inputs."""
    workdir = job.workdir
    inputs = [p if os.path.isabs(p) else os.path.join(workdir, p) for p in job.properties.get("input") or []]
    configs = job.option("--configfiles") + job.option("--configfile")
    return [os.path.dirname(job.snakefile), *configs, *inputs]
