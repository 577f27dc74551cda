"""Watch an embedding run: per shard its state, host, GPU, articles done, rate and ETA.

Everything comes from what Snakemake and the rules already write, so there
is no second source of truth to drift:

- ``results/<model>/shards/shard-NNNN.h5`` exists and Snakemake has no
  incomplete marker for it: the shard is **done**;
- Snakemake's newest log (``.snakemake/log/``) says which embed jobs
  started, finished or failed in the current run (**running**, **failed**);
  a shard it has not started is **waiting**;
- each shard's rule log (``results/<model>/logs/embed/shard-NNNN.log``)
  has the placement line (host, SLURM job, ``CUDA_VISIBLE_DEVICES``) and the
  latest ``done/total, rate, ETA`` line that :class:`knowledge_map.embed.ProgressLog`
  writes.  With the tensor profile the status command copies the rule logs
  of running remote jobs back on every check.

Run ``python -m knowledge_map progress [WORKDIR] [--watch SECONDS]``.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROGRESS = re.compile(r"shard (\d+): (\d+)/(\d+) articles, ([\d.]+) articles/s, ETA (\S+) s")
PLAN = re.compile(r"shard (\d+)/(\d+): rows (\d+)\.\.(\d+) \((\d+) articles\)")
PLACEMENT = re.compile(r"placement host=(\S+) slurm_job=(\S+) CUDA_VISIBLE_DEVICES=(\S+)")
JOB_START = re.compile(r"^(?:local)?rule embed_shard:")
STATES = ("done", "running", "failed", "waiting")


@dataclass
class Shard:
    """What is known about one shard."""

    shard: str
    state: str = "waiting"
    host: str = "-"
    gpu: str = "-"
    slurm_job: str = "-"
    done: int = 0
    total: int | None = None
    rate: float | None = None
    eta: float | None = None


def parse_shard_log(text: str) -> dict:
    """The placement and the latest progress of a shard's rule log."""
    info: dict = {}
    for line in text.splitlines():
        if match := PLAN.search(line):
            info["n_shards"], info["total"] = int(match[2]), int(match[5])
        elif match := PLACEMENT.search(line):
            info["host"], info["slurm_job"], info["gpu"] = match[1], match[2], match[3]
        elif match := PROGRESS.search(line):
            info.update(done=int(match[2]), total=int(match[3]), rate=float(match[4]), eta=float(match[5]))
    return info


def parse_snakemake_log(text: str) -> dict[str, str]:
    """``{shard: running|done|failed}`` for the embed jobs of one Snakemake log, last event wins.

    Job blocks name their ``jobid`` and ``wildcards: shard=NNNN``; later
    lines report ``Finished jobid: N`` or an ``Error in rule embed_shard``
    block with the same jobid.
    """
    states: dict[str, str] = {}
    by_jobid: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        block = []
        for following in lines[index + 1 :]:
            if not following.startswith(" "):
                break
            block.append(following)
        if JOB_START.match(line) or line.startswith("Error in rule embed_shard:"):
            jobid = next((b.split(":", 1)[1].strip() for b in block if b.strip().startswith("jobid:")), None)
            shard = next((b.split("shard=", 1)[1].split(",")[0].strip() for b in block if "shard=" in b), None)
            if jobid is None:
                continue
            if shard is not None:
                by_jobid[jobid] = shard
            if jobid in by_jobid:
                states[by_jobid[jobid]] = "running" if JOB_START.match(line) else "failed"
        elif match := re.match(r"Finished jobid: (\d+)", line):
            if match[1] in by_jobid:
                states[by_jobid[match[1]]] = "done"
    return states


def incomplete(workdir: Path, path: str) -> bool:
    """Whether Snakemake marks ``path`` as being written (or left half-written by a dead job)."""
    marker = base64.urlsafe_b64encode(path.encode()).decode()
    return (workdir / ".snakemake" / "incomplete" / marker).exists()


def collect(workdir: Path) -> dict[str, list[Shard]]:
    """``{model folder: [Shard, ...]}`` for every model folder under ``workdir/results``."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    run_states = parse_snakemake_log(logs[-1].read_text(errors="replace")) if logs else {}
    models: dict[str, list[Shard]] = {}
    for model_dir in sorted(p for p in (workdir / "results").glob("*") if (p / "logs" / "embed").is_dir()
                            or (p / "shards").is_dir()):
        infos = {p.stem.removeprefix("shard-"): parse_shard_log(p.read_text(errors="replace"))
                 for p in (model_dir / "logs" / "embed").glob("shard-*.log")}
        files = {p.stem.removeprefix("shard-") for p in (model_dir / "shards").glob("shard-*.h5")}
        n_shards = max((info.get("n_shards", 0) for info in infos.values()), default=0)
        names = sorted(set(infos) | files | {f"{i:04d}" for i in range(n_shards)})
        shards = []
        for name in names:
            info = infos.get(name, {})
            shard = Shard(name, **{k: v for k, v in info.items() if k != "n_shards"})
            relative = str((model_dir / "shards" / f"shard-{name}.h5").relative_to(workdir))
            if name in files and not incomplete(workdir, relative):
                shard.state = "done"
                shard.done = shard.total if shard.total is not None else shard.done
                shard.eta = 0.0
            elif run_states.get(name) in ("running", "failed"):
                shard.state = run_states[name]
            shards.append(shard)
        models[model_dir.name] = shards
    return models


def render(models: dict[str, list[Shard]]) -> str:
    """A fixed-width table per model and one summary line per model."""
    out = []
    for model, shards in models.items():
        out.append(f"{model}")
        out.append(f"  {'shard':<6} {'state':<8} {'host':<14} {'gpu':<4} {'slurm':<8} {'articles':>13} "
                   f"{'rate/s':>8} {'ETA':>8}")
        for s in shards:
            articles = f"{s.done}/{s.total}" if s.total is not None else "-"
            rate = f"{s.rate:.1f}" if s.rate is not None and s.state == "running" else "-"
            eta = f"{s.eta:.0f} s" if s.eta is not None and s.state == "running" else "-"
            out.append(f"  {s.shard:<6} {s.state:<8} {s.host:<14} {s.gpu:<4} {s.slurm_job:<8} {articles:>13} "
                       f"{rate:>8} {eta:>8}")
        counts = {state: sum(s.state == state for s in shards) for state in STATES}
        done = sum(s.done for s in shards)
        total = sum(s.total or 0 for s in shards)
        out.append("  " + ", ".join(f"{n} {state}" for state, n in counts.items())
                   + (f"; {done}/{total} articles of the started shards" if total else ""))
    return "\n".join(out) if out else "no embedding shard has started in this folder yet"


def main(argv: list[str] | None = None) -> int:
    """Print (or with ``--watch`` keep printing) the shard table of a workflow folder."""
    parser = argparse.ArgumentParser(prog="python -m knowledge_map progress", description=__doc__.split("\n")[0])
    parser.add_argument("workdir", nargs="?", default=".", help="the folder Snakemake runs in (default: here)")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    while True:
        table = render(collect(workdir))
        if args.watch is None:
            print(table)
            return 0
        print("\033[H\033[J" + time.strftime("%H:%M:%S ") + str(workdir.resolve()) + "\n" + table, flush=True)
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
