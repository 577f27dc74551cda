"""``python -m knowledge_map.cluster --hosts hosts.yaml {submit JOBSCRIPT | status JOBID | cancel JOBID... | watch RUN_DIR PID}``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from knowledge_map.cluster.commands import cancel, status, submit
from knowledge_map.cluster.hosts import load_hosts
from knowledge_map.cluster.watch import start_watcher, watch
from knowledge_map.errors import KnowledgeMapError


def announce_and_exit(jobid: str) -> None:
    """Print the job id for Snakemake and end the process at once, skipping Python's shutdown.

    Called while :func:`~knowledge_map.cluster.commands.submit` still holds
    Ctrl-C: one that arrived during a normal shutdown would be lost, and a job
    whose id Snakemake never read would run on after the run was cancelled.
    """
    sys.stdout.write(jobid + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one line on stderr (a failed status check prints ``failed``)."""
    parser = argparse.ArgumentParser(prog="python -m knowledge_map.cluster",
                                     description="Submit, status and cancel commands that run Snakemake jobs on SSH GPU hosts.")
    parser.add_argument("--hosts", required=True, help="the profile's hosts.yaml")
    parser.add_argument("action", choices=("submit", "status", "cancel", "watch"))
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    try:
        cluster = load_hosts(args.hosts)
        if args.action == "submit":
            # Before the launch: a run that ends however it ends has its jobs cancelled.
            start_watcher(args.hosts, str(Path(args.args[-1]).resolve().parent))
            submit(cluster, args.args[-1], announce=announce_and_exit)
        elif args.action == "watch":
            watch(cluster, args.args[0], int(args.args[1]) or None)
        elif args.action == "status":
            print(status(cluster, args.args[0]))
        else:
            cancel(cluster, args.args)
    except KnowledgeMapError as error:
        print(f"knowledge-map tensor {args.action}: {error}", file=sys.stderr)
        if args.action == "status":
            print("failed")
            return 0
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
