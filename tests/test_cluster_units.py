"""Unit tests of the cluster helpers: GPU slots, tensor host config and jobscripts, progress, triggers, envs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from daemons import REPO

from knowledge_map.cluster.gpu_slots import acquire_slots, busy_slots
from knowledge_map.cluster.hosts import choose_host, parse_hosts
from knowledge_map.cluster.jobscript import map_path, parse_jobscript, rewrite_command
from knowledge_map.cluster.progress import collect, parse_shard_log, parse_snakemake_log, render
from knowledge_map.errors import KnowledgeMapError
from knowledge_map.triggers import source_digest

JOBSCRIPT = """#!/bin/sh
# properties = {"type": "single", "rule": "embed_shard", "local": false, "input": ["results/corpus.parquet"], \
"output": ["results/m/shards/shard-0001.h5"], "wildcards": {"shard": "0001"}, "params": {}, \
"log": ["results/m/logs/embed/shard-0001.log"], "threads": 4, "resources": {"gpu": 1, "batch_size": 64}, "jobid": 3}
cd /home/u/km && /opt/py/bin/python3.11 -m snakemake --snakefile '/home/u/km/Snakefile' --target-jobs \
'embed_shard:shard=0001' --wait-for-files '/home/u/km/.snakemake/tmp.abc' 'results/corpus.parquet' \
--configfiles /etc/km/extra.yaml --mode 'remote' && exit 0 || exit 1
"""


# -- GPU slots -------------------------------------------------------------------------------------


def test_slots_are_distinct_and_released_with_their_fds(tmp_path):
    """Two claims on a 2-GPU host get GPUs 0 and 1; a third finds none until one closes."""
    first = acquire_slots(tmp_path, 2)
    second = acquire_slots(tmp_path, 2)
    assert set(first) | set(second) == {0, 1}
    with pytest.raises(TimeoutError):
        acquire_slots(tmp_path, 2, poll=0.05, timeout=0.2)
    os.close(first.popitem()[1])
    assert acquire_slots(tmp_path, 2, timeout=1)


def test_slot_is_freed_when_its_holder_is_sigkilled(tmp_path):
    """The kernel drops a flock with the last fd: a SIGKILLed job leaves no stale GPU claim."""
    code = f"from knowledge_map.cluster.gpu_slots import acquire_slots; import time; acquire_slots({str(tmp_path)!r}, 1); " \
           "print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout.readline().strip() == "held"
    assert busy_slots(tmp_path, 1) == [0]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert busy_slots(tmp_path, 1) == []


def test_asking_for_more_gpus_than_the_host_has_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="wants 3 GPUs but the host has 2"):
        acquire_slots(tmp_path, 2, 3)


# -- tensor hosts and jobscripts --------------------------------------------------------------------


def test_shipped_hosts_file_parses_to_two_eight_gpu_servers():
    cluster = parse_hosts(yaml.safe_load((REPO / "profiles/tensor/hosts.yaml").read_text()))
    assert [(h.name, h.gpus) for h in cluster.hosts] == [("tensor01", 8), ("tensor02", 8)]
    assert cluster.shared_fs is False


@pytest.mark.parametrize("data, message", [
    ({}, "expected a 'hosts:' mapping"),
    ({"hosts": {"a": 0}}, "gpus must be a whole number >= 1"),
    ({"hosts": {"a": {"gpus": 2, "passwd": "x"}}}, "unknown key"),
    ({"hosts": {"a": 1}, "password": "x"}, "unknown key"),
    ({"hosts": {"local": 1}}, "cannot be a host alias"),
    ({"hosts": {"a": 1}, "shared_fs": "yes"}, "shared_fs must be true or false"),
    ({"hosts": {"a": 1}, "timeouts": {"connect": 0}}, r"timeouts.connect must be a number of seconds > 0, got 0"),
    ({"hosts": {"a": 1}, "timeouts": {"conect": 5}}, "timeouts must be a mapping of command, connect, set_aside"),
])
def test_bad_hosts_files_are_refused_in_one_line(data, message):
    with pytest.raises(KnowledgeMapError, match=message):
        parse_hosts(data)


def test_sixteen_jobs_fill_all_sixteen_gpus():
    """Placing jobs one by one on the least-loaded host uses every GPU of both servers."""
    cluster = parse_hosts({"hosts": {"tensor01": 8, "tensor02": 8}})
    active: dict[str, int] = {}
    for _ in range(16):
        host = choose_host(cluster, active).name
        active[host] = active.get(host, 0) + 1
    assert active == {"tensor01": 8, "tensor02": 8}


def test_jobscript_paths_move_to_the_job_folder_and_mirror():
    job = parse_jobscript(JOBSCRIPT)
    assert (job.workdir, job.snakefile, job.gpus) == ("/home/u/km", "/home/u/km/Snakefile", 1)
    command = rewrite_command(job, "/r/jobs/j/work", "/r/mirror", "python3")
    assert command.startswith("cd /r/jobs/j/work && python3 -m snakemake --snakefile /r/jobs/j/work/Snakefile")
    assert "/r/jobs/j/work/.snakemake/tmp.abc results/corpus.parquet" in command
    assert "--configfiles /r/mirror/etc/km/extra.yaml" in command and command.endswith("&& exit 0 || exit 1")
    assert "/home/u" not in command
    assert map_path("/home/u/kmx", "/home/u/km", "/w", "/m") == "/m/home/u/kmx"


# -- progress --------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_progress_reads_a_finished_run(workflow_run):
    """A complete run shows every shard done with its host and article count."""
    models = collect(workflow_run)
    shards = models["all-MiniLM-L6-v2"]
    assert [s.shard for s in shards] == ["0000", "0001", "0002"]
    assert all(s.state == "done" and s.total and s.done == s.total and s.host != "-" for s in shards)
    assert "3 done, 0 running, 0 failed, 0 waiting" in render(models)


def test_progress_line_and_placement_parse():
    text = ("x INFO knowledge_map.embed: shard 2/4: rows 10..20 (10 articles) on cuda in float16\n"
            "x INFO knowledge_map.embed: shard 2: placement host=tensor02 slurm_job=- CUDA_VISIBLE_DEVICES=5\n"
            "x INFO knowledge_map.embed: shard 2: 4/10 articles, 2.5 articles/s, ETA 2 s\n")
    assert parse_shard_log(text) == {"n_shards": 4, "total": 10, "host": "tensor02", "slurm_job": "-", "gpu": "5",
                                     "done": 4, "rate": 2.5, "eta": 2.0}


def test_snakemake_log_states_last_event_wins():
    log = ("rule embed_shard:\n    jobid: 4\n    wildcards: shard=0001\n"
           "rule embed_shard:\n    jobid: 5\n    wildcards: shard=0002\n"
           "Error in rule embed_shard:\n    message: x\n    jobid: 4\n"
           "Finished jobid: 5 (Rule: embed_shard)\n"
           "rule embed_shard:\n    jobid: 6\n    wildcards: shard=0003\n")
    assert parse_snakemake_log(log) == {"0001": "failed", "0002": "done", "0003": "running"}


@pytest.mark.e2e
def test_progress_command_runs(workflow_run):
    result = subprocess.run([sys.executable, "-m", "knowledge_map.cluster.progress", str(workflow_run)],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert result.returncode == 0 and "0002   done" in result.stdout


# -- rerun triggers ----------------------------------------------------------------------------------


def test_the_labelling_code_digest_covers_its_modules_and_the_script(tmp_path):
    """A new labelling rule relabels: the cell_labels rule's code param changes with the script or the modules."""
    from knowledge_map.triggers import LABEL_MODULES, label_code_digest, module_paths

    script = tmp_path / "cell_labels.py"
    script.write_text("x = 1\n")
    before = label_code_digest(script)
    script.write_text("x = 1  # a comment\n")
    assert label_code_digest(script) == before
    script.write_text("x = 2\n")
    assert label_code_digest(script) != before
    assert [p.rsplit("/", 1)[-1] for p in module_paths(LABEL_MODULES)] == ["labels.py", "phrases.py",
                                                                           "label_quality.py", "grid.py"]


def test_every_later_rule_reruns_when_the_package_code_it_runs_changes(tmp_path, monkeypatch):
    """Each rule of RULE_MODULES has its script and the code param; the digest follows its modules, not others."""
    import re

    from knowledge_map import triggers

    rules = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    for rule in triggers.RULE_MODULES:
        block = re.search(rf"^rule {rule}:\n(.*?)(?=^rule |\Z)", rules, re.S | re.M)
        assert block and f'code=RULE_CODE["{rule}"]' in block.group(1), rule
        assert (REPO / "scripts" / f"{rule}.py").is_file(), rule
    # Every rule that runs package code has a code param (the corpus rule and provenance had none).
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", rules, re.S | re.M)
    scripted = [name for name, body in blocks if "script:" in body]
    assert len(scripted) >= 14
    assert [name for name, body in blocks if "script:" in body and "code=" not in body] == []
    module = tmp_path / "science.py"
    module.write_text("K = 1\n")
    script = tmp_path / "rule.py"
    script.write_text("x = 1\n")
    monkeypatch.setattr(triggers, "module_paths", lambda modules: [str(module)] if modules == ("mine",) else [])
    monkeypatch.setitem(triggers.RULE_MODULES, "mine", ("mine",))
    before = triggers.rule_code_digest("mine", script)
    module.write_text('"""Documented."""\nK = 1  # same code\n')
    assert triggers.rule_code_digest("mine", script) == before
    module.write_text("K = 2\n")
    assert triggers.rule_code_digest("mine", script) != before


def test_digest_ignores_comments_layout_and_docstrings_but_not_code():
    base = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert source_digest(base) == source_digest('def f(x):  # note\n    """Other doc."""\n\n    return (x + 1)\n')
    assert source_digest(base) != source_digest('def f(x):\n    """Doc."""\n    return x + 2\n')


# -- conda environments ------------------------------------------------------------------------------


def pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[=<>!~ ]", spec, maxsplit=1)[0].lower(): spec for spec in project}


def env_specs(path: Path) -> list[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return [spec for dep in deps if isinstance(dep, dict) for spec in dep["pip"]]


@pytest.mark.parametrize("env", ["embed", "map", "site"])
def test_conda_env_pins_equal_pyproject(env):
    """Every package an env names is a project dependency with exactly the project's pin."""
    project = pins()
    for spec in env_specs(REPO / "envs" / f"{env}.yaml"):
        name = re.split(r"[=<>!~ ]", spec, maxsplit=1)[0].lower()
        assert name in project, f"envs/{env}.yaml: {name} is not a dependency in pyproject.toml"
        assert spec == project[name], f"envs/{env}.yaml: {spec!r} but pyproject.toml pins {project[name]!r}"


#: Functions whose lazy imports run only on the embedding side (rules/common.smk, embed_shard): the model's files.
#: Scripts of other rules import their module for other functions and never call these.
EMBEDDING_SIDE_ONLY = {("knowledge_map/identity.py", "model_folder"), ("knowledge_map/identity.py", "model_trigger")}


def third_party_imports(path: Path, seen: set[Path]) -> set[str]:
    """Top-level third-party modules ``path`` imports, following knowledge_map imports (also inside functions,
    except those of :data:`EMBEDDING_SIDE_ONLY`)."""
    import ast

    if path in seen:
        return set()
    seen.add(path)
    relative = path.relative_to(REPO).as_posix()
    found: set[str] = set()
    todo = [ast.parse(path.read_text())]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef) and (relative, node.name) in EMBEDDING_SIDE_ONLY:
            continue
        todo.extend(ast.iter_child_nodes(node))
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for name in names:
            top = name.split(".")[0]
            if top == "knowledge_map":
                module = REPO / (name.replace(".", "/") + ".py")
                if not module.exists():
                    module = REPO / name.replace(".", "/") / "__init__.py"
                if module.exists():
                    found |= third_party_imports(module, seen)
            elif top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)
    return found


def rule_directives(text: str) -> dict[str, dict[str, str]]:
    """Each rule's one-value directives (``conda``, ``script``, ...) from a snakefmt-formatted rules file."""
    rules: dict[str, dict[str, str]] = {}
    for block in re.split(r"^(?=rule \w+:)", text, flags=re.M):
        name = re.match(r"rule (\w+):", block)
        if name:
            # A directive's value may follow comment lines (snakefmt keeps them there).
            pattern = r'^    (\w+):\n(?:        #[^\n]*\n)*        "([^"\n]+)"\n'
            rules[name.group(1)] = dict(re.findall(pattern, block, flags=re.M))
    return rules


def test_rule_parser_finds_every_rule_and_its_directives():
    """Every rule of rules/*.smk is found, and every rule with a script has a conda env."""
    text = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    rules = rule_directives(text)
    assert len(rules) == len(re.findall(r"^rule \w+:", text, flags=re.M)) >= 14
    with_script = {name: d for name, d in rules.items() if "script" in d}
    assert len(with_script) >= 14
    for name, directives in with_script.items():
        assert directives.get("conda", "").startswith("../envs/"), f"rule {name} has a script but no conda env"


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, transitively (extras left out), as installed here."""
    from importlib.metadata import PackageNotFoundError, requires

    found, todo = set(), [normalised(n) for n in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requirements = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [normalised(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in requirements if "extra ==" not in r]
    return found


def test_each_rule_env_provides_what_its_script_imports():
    """The conda env of every rule (what it lists and what that installs) covers the third-party imports of its
    script and of the package code it calls."""
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()
    problems = []
    for rules in sorted((REPO / "rules").glob("*.smk")):
        for name, directives in rule_directives(rules.read_text()).items():
            if "script" not in directives:
                continue
            env, script = directives["conda"], directives["script"].removeprefix("../")
            specs = env_specs(REPO / env.removeprefix("../"))
            provided = installed_closure({re.split(r"[=<>!~ ]", s, maxsplit=1)[0] for s in specs})
            for module in sorted(third_party_imports(REPO / script, set())):
                dists = {normalised(d) for d in distributions.get(module, [module])}
                if not dists & provided:
                    problems.append(f"rule {name}: {script} imports {module} but {env} does not install {dists}")
    assert not problems, "\n".join(problems)


def test_the_watcher_finds_snakemake_not_the_shell_that_names_its_jobscript():
    from knowledge_map.cluster.watch import is_snakemake

    assert is_snakemake([b"/usr/bin/python3", b"-m", b"snakemake", b"--profile", b"tensor"])
    assert is_snakemake([b"/home/me/env/bin/snakemake", b"--profile", b"tensor"])
    assert is_snakemake([b"/usr/bin/python3", b"/home/me/env/bin/snakemake", b"-c2"])
    assert not is_snakemake([b"/bin/sh", b"-c", b"profiles/tensor/submit .snakemake/tmp.x/snakejob.embed.4.sh"])
    assert not is_snakemake([b"python3", b"profiles/tensor/submit", b".snakemake/tmp.x/snakejob.sh"])


def test_the_watcher_cancels_what_a_run_left_unfinished_and_only_once(tmp_path, monkeypatch):
    """The run's folder disappears (Snakemake exited): unfinished jobs are cancelled, finished ones left alone."""
    import fcntl
    import threading

    from knowledge_map.cluster.hosts import load_hosts
    from knowledge_map.cluster.records import read_record, write_record
    from knowledge_map.cluster.watch import watch

    monkeypatch.chdir(tmp_path)
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(yaml.safe_dump({"hosts": {"gpu1": {"gpus": 1}}}))
    cluster = load_hosts(hosts)
    run_dir = tmp_path / ".snakemake" / "tmp.abc123"
    run_dir.mkdir(parents=True)
    for name, state in (("running", "submitted"), ("done", "success"), ("other-run", "submitted")):
        job_dir = tmp_path / "jobs" / name
        job_dir.mkdir(parents=True)
        write_record({"jobid": f"local/{name}", "host": "local", "job_dir": str(job_dir), "state": state,
                      "run": "tmp.other" if name == "other-run" else "tmp.abc123", "gpus": 0})
    # While another watcher holds the run, a second one steps aside at once.
    lock = tmp_path / ".snakemake/knowledge-map-tensor/watch/tmp.abc123.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert watch(cluster, str(run_dir), None, poll=0.05) == []
    results: list[list[str]] = []
    watcher = threading.Thread(target=lambda: results.append(watch(cluster, str(run_dir), None, poll=0.05)))
    watcher.start()
    run_dir.rmdir()
    watcher.join(timeout=30)
    assert results == [["local/running"]]
    assert read_record("local/running")["state"] == "failed" and "cancelled" in read_record("local/running")
    assert read_record("local/done")["state"] == "success"
    assert read_record("local/other-run")["state"] == "submitted"


def test_provenance_reruns_on_what_a_run_makes_not_where_it_runs():
    """Switching profile (model.device), batch size or compile reruns nothing; any other setting redoes
    provenance.json, which records the config."""
    import copy

    from knowledge_map.config import validate_config
    from knowledge_map.provenance import results_config_hash

    config = validate_config({})
    base = results_config_hash(config)
    for section, key, value in (("model", "device", "cpu"), ("model", "batch_size", 7), ("model", "compile", False)):
        changed = copy.deepcopy(config)
        changed[section][key] = value
        assert results_config_hash(changed) == base, key
    changed = copy.deepcopy(config)
    changed["site"]["excerpt_chars"] += 1
    assert results_config_hash(changed) != base
    assert config["model"]["device"] == "auto"  # the hash left the config itself alone
