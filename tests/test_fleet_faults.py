"""The SSH fleet against real faults: a dead host, a hung host, one user's umask, a changed root.

The hosts are aliases of one real loopback sshd (``tensor02``), a closed port
(``tensor01``: connection refused) and a socket that accepts and never
answers (``tensor-hung``).  Jobs go through ``python -m knowledge_map.cluster``,
the commands the ``tensor`` profile runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from daemons import REPO, free_port, start_sshd, stop, wait_for

from knowledge_map.cluster.gpu_slots import acquire_slots, busy_slots
from knowledge_map.cluster.hosts import load_hosts
from knowledge_map.cluster.remote import on_host, rsync
from knowledge_map.errors import KnowledgeMapError

needs_sshd = pytest.mark.skipif(not shutil.which("sshd"), reason="needs openssh-server")
pytestmark = pytest.mark.slow  # real sshd, hosts that time out, jobs that run


@pytest.fixture(scope="module")
def silent_port():
    """A TCP port that accepts connections and never says a word (a hung host)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, silent_port):
    """An ssh config naming a healthy, a dead and a hung host."""
    folder = tmp_path_factory.mktemp("fleet-sshd")
    daemon, ssh_config = start_sshd(folder, ("tensor02",))
    common = Path(ssh_config).read_text().split("\n", 1)[1].replace("  Port ", "  #Port ")
    dead = free_port()  # nothing listens there
    with open(ssh_config, "a") as handle:
        handle.write(f"Host tensor01\n  Port {dead}\n{common}Host tensor-hung\n  Port {silent_port}\n{common}")
    yield ssh_config
    stop(daemon)


def write_hosts(path: Path, ssh_config: Path, hosts: dict, remote: Path, **extra) -> Path:
    spec = {"hosts": {name: {"gpus": gpus, "root": str(remote / name), "slots_dir": str(remote / name / "slots")}
                      for name, gpus in hosts.items()},
            "python": sys.executable, "shared_fs": False, "ssh_config": str(ssh_config),
            "timeouts": {"connect": 2, "command": 20, "transfer": 60, "set_aside": 300}, **extra}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def jobscript(folder: Path, jobid: int) -> Path:
    """A Snakemake jobscript of the cluster-generic shape whose job writes one output file."""
    source = folder / "src"
    source.mkdir(exist_ok=True)
    (source / "Snakefile").write_text("# the workflow source the host mirrors\n")
    properties = {"type": "single", "rule": "embed_shard", "input": [], "output": [f"out/{jobid}.txt"],
                  "wildcards": {"shard": f"{jobid:04d}"}, "log": [], "resources": {"gpu": 1}, "jobid": jobid}
    code = f"import os; os.makedirs('out', exist_ok=True); open('out/{jobid}.txt', 'w').write('done')"
    path = folder / f"job-{jobid}.sh"
    path.write_text(f"#!/bin/sh\n# properties = {json.dumps(properties)}\n"
                    f"cd {folder} && {sys.executable} -c \"{code}\" --snakefile {source / 'Snakefile'}\n")
    return path


def tensor(workdir: Path, hosts: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "knowledge_map.cluster", "--hosts", str(hosts), *args], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


def submit_and_wait(workdir: Path, hosts: Path, jobid: int) -> tuple[str, subprocess.CompletedProcess]:
    submitted = tensor(workdir, hosts, "submit", str(jobscript(workdir, jobid)))
    assert submitted.returncode == 0, submitted.stderr
    external = submitted.stdout.strip()
    wait_for(lambda: tensor(workdir, hosts, "status", external).stdout.strip() != "running", 60, "the job to end")
    return external, submitted


def record(workdir: Path, external: str) -> dict:
    path = workdir / ".snakemake/knowledge-map-tensor/jobs" / f"{external.replace('/', '__')}.json"
    return json.loads(path.read_text())


@needs_sshd
def test_a_dead_and_a_hung_host_are_set_aside_and_the_job_runs_on_the_healthy_one(tmp_path, fleet):
    """tensor01 refuses, tensor-hung never answers: one warning each, the job runs on tensor02, nothing waits long."""
    hosts = write_hosts(tmp_path / "hosts.yaml", fleet, {"tensor01": 8, "tensor-hung": 8, "tensor02": 1},
                        tmp_path / "remote")
    started = time.monotonic()
    external, submitted = submit_and_wait(tmp_path, hosts, 1)
    assert external.startswith("tensor02/")
    warnings = [line for line in submitted.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2 and "tensor01 did not take a job" in warnings[0], submitted.stderr
    assert "tensor-hung did not take a job" in warnings[1] and "Traceback" not in submitted.stderr
    assert time.monotonic() - started < 60
    assert (tmp_path / "out/1.txt").read_text() == "done"
    # Both bad hosts are now passed over without a new attempt (and without new warnings).
    again = tensor(tmp_path, hosts, "submit", str(jobscript(tmp_path, 2)))
    assert again.returncode == 0 and again.stdout.startswith("tensor02/") and "warning" not in again.stderr


@needs_sshd
def test_submit_fails_in_one_line_only_when_no_host_takes_the_job(tmp_path, fleet):
    hosts = write_hosts(tmp_path / "hosts.yaml", fleet, {"tensor01": 8, "tensor-hung": 8}, tmp_path / "remote")
    result = tensor(tmp_path, hosts, "submit", str(jobscript(tmp_path, 1)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    final = result.stderr.strip().splitlines()[-1]
    assert final.startswith("knowledge-map tensor submit: no host took the job (tensor01: ")
    assert "; tensor-hung: " in final


@needs_sshd
def test_every_ssh_and_rsync_call_is_bounded(tmp_path, fleet):
    """A hung host or a hung command ends in a one-line error after the configured time, never a hang."""
    cluster = load_hosts(write_hosts(tmp_path / "hosts.yaml", fleet, {"tensor02": 1, "tensor-hung": 1},
                                     tmp_path / "remote"))
    for call in (lambda: on_host(cluster, "tensor-hung", "true"),
                 lambda: rsync(cluster, "/etc/hostname", f"tensor-hung:{tmp_path}/x"),
                 lambda: on_host(cluster, "tensor02", "sleep 30", timeout=2)):
        began = time.monotonic()
        with pytest.raises(KnowledgeMapError) as error:
            call()
        assert time.monotonic() - began < 10
        assert "\n" not in str(error.value)
    assert str(error.value).startswith("tensor02: no result after 2 s")


@needs_sshd
def test_finished_job_folders_are_removed_and_a_new_root_is_used(tmp_path, fleet):
    """A successful job's remote folder goes once its output is back; a failed one stays; editing root: applies."""
    hosts = write_hosts(tmp_path / "hosts.yaml", fleet, {"tensor02": 1}, tmp_path / "remote")
    external, _ = submit_and_wait(tmp_path, hosts, 1)
    done = record(tmp_path, external)
    assert done["state"] == "success" and done.get("removed")
    assert (tmp_path / "out/1.txt").read_text() == "done" and not Path(done["job_dir"]).exists()

    failing = jobscript(tmp_path, 2)
    failing.write_text(failing.read_text().replace("-c \"", "-c \"raise SystemExit(3); "))
    submitted = tensor(tmp_path, hosts, "submit", str(failing))
    wait_for(lambda: tensor(tmp_path, hosts, "status", submitted.stdout.strip()).stdout.strip() != "running", 60,
             "the failing job to end")
    failed = record(tmp_path, submitted.stdout.strip())
    assert failed["state"] == "failed" and Path(failed["job_dir"]).is_dir()

    write_hosts(hosts, fleet, {"tensor02": 1}, tmp_path / "remote-moved")
    external, _ = submit_and_wait(tmp_path, hosts, 3)
    assert record(tmp_path, external)["job_dir"].startswith(str(tmp_path / "remote-moved" / "tensor02") + "/")


# -- GPU slot locks and umask ----------------------------------------------------------------------

NOBODY = 65534


def as_nobody(code: str, cwd: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` as user nobody (the system Python: root's own one is not readable by others)."""
    return subprocess.run(["/usr/bin/python3", "-c", code], cwd=cwd, capture_output=True, text=True, user=NOBODY,
                          group=NOBODY, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
                                reason="needs root (to run a job as another user) and /usr/bin/python3")


@needs_root
def test_a_strict_umask_does_not_lock_other_users_out_of_a_gpu():
    """A slot file first made under umask 077 can still be locked by another user."""
    slots = Path(tempfile.mkdtemp(prefix="km-slots-", dir="/tmp"))
    try:
        os.chmod(slots, 0o1777)
        previous = os.umask(0o077)
        try:
            for fd in acquire_slots(slots, 2, wanted=2).values():
                os.close(fd)
        finally:
            os.umask(previous)
        assert {stat.S_IMODE((slots / f"gpu-{i}.lock").stat().st_mode) for i in range(2)} == {0o644}
        code = (f"from knowledge_map.cluster.gpu_slots import acquire_slots; "
                f"print(sorted(acquire_slots({str(slots)!r}, 2, wanted=2, timeout=5)))")
        result = as_nobody(code, str(slots))
        assert result.returncode == 0 and result.stdout.strip() == "[0, 1]", result.stderr
        assert busy_slots(slots, 2) == []
    finally:
        shutil.rmtree(slots)


@needs_root
def test_an_unusable_lock_is_a_one_line_error_naming_it(tmp_path):
    """A lock file nobody else can read (made by an older version) fails the job with one line naming it."""
    slots = Path(tempfile.mkdtemp(prefix="km-slots-", dir="/tmp"))
    job = Path(tempfile.mkdtemp(prefix="km-job-", dir="/tmp"))
    try:
        os.chmod(slots, 0o1777)
        os.chmod(job, 0o777)
        lock = slots / "gpu-0.lock"
        lock.touch(mode=0o600)
        os.chmod(lock, 0o600)
        code = (f"import sys; from knowledge_map.cluster.gpu_slots import main; "
                f"sys.exit(main(['--job-dir', {str(job)!r}, '--slots-dir', {str(slots)!r}, '--n-gpus', '1', "
                f"'--host', 'h', '--', 'true']))")
        result = as_nobody(code, str(job))
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == (
            f"knowledge-map gpu_slots: GPU slot lock {lock} cannot be opened by this user (owner root, mode "
            f"-rw-------); every user of the host must be able to read it: run `chmod 644 {lock}` as its owner or root")
        assert json.loads((job / "exitcode").read_text())["error"].startswith(f"GPU slot lock {lock}")
    finally:
        shutil.rmtree(slots)
        shutil.rmtree(job)


@needs_sshd
def test_outputs_that_fail_to_copy_back_are_fetched_again_not_reported_failed(tmp_path, fleet):
    """The job ends on the host, the first copy of its outputs fails (a network hiccup): the check says running,
    the next copies them and says success; the work is not redone."""
    hosts = write_hosts(tmp_path / "hosts.yaml", fleet, {"tensor02": 1}, tmp_path / "remote")
    shim = tmp_path / "bin"
    shim.mkdir()
    marker = tmp_path / "failed-once"
    # An rsync that fails the first copy back from a host (--files-from=:...), and works otherwise.
    (shim / "rsync").write_text(
        "#!/bin/sh\n"
        f'case "$*" in *--files-from=:*) if [ ! -e {marker} ]; then touch {marker}; '
        'echo "rsync: connection reset by peer" >&2; exit 12; fi;; esac\n'
        f'exec {shutil.which("rsync")} "$@"\n')
    (shim / "rsync").chmod(0o755)
    env_path = f"{shim}{os.pathsep}{os.environ['PATH']}"
    submitted = tensor(tmp_path, hosts, "submit", str(jobscript(tmp_path, 7)))
    external = submitted.stdout.strip()

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "knowledge_map.cluster", "--hosts", str(hosts), "status", external],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO), "PATH": env_path})

    wait_for(lambda: marker.exists() or check().stdout.strip() != "running", 60, "the first copy back")
    assert marker.exists() and not (tmp_path / "out/7.txt").exists()
    assert record(tmp_path, external)["state"] == "submitted" and record(tmp_path, external)["status_errors"] == 1
    final = check()
    assert final.stdout.strip() == "success", final.stderr
    assert (tmp_path / "out/7.txt").read_text() == "done"
