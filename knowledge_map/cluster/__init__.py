"""The SSH job dispatcher: submit, status and cancel commands that run Snakemake jobs on SSH GPU hosts.

The ``tensor`` profile uses Snakemake's cluster-generic executor; these are
its ``submit``, ``status`` and ``cancel`` commands.  Snakemake keeps doing
the scheduling (``--jobs``, retries, the DAG); this package only decides
which host a job goes to and carries it there:

- GPU jobs (``resources: gpu`` > 0) go to the host with the most free GPUs
  (GPUs in ``hosts.yaml`` minus this run's jobs still active there); on the
  host, :mod:`knowledge_map.cluster.gpu_slots` claims the GPU with ``flock`` and sets
  ``CUDA_VISIBLE_DEVICES``.  CPU jobs run on this machine, where Snakemake runs.
- Without a shared filesystem the workflow source, the config files and the
  job's inputs are rsynced to ``<root>/mirror/<local absolute path>`` on the
  host, hard-linked into a per-job folder, and the jobscript's absolute
  paths are rewritten to point there; the files the job wrote come back by
  rsync before the job is reported successful.  With ``shared_fs: true`` the
  jobscript runs unchanged.
- The status command asks the host: an exit code, a job still holding its
  ``alive.lock``, or neither (it died: failed).

- Every ssh and rsync call goes through one runner (:func:`knowledge_map.cluster.remote.run_command`):
  a connect timeout, keep-alives, a bounded duration, and a one-line error.
  A host that fails to take a job is set aside for a while (a one-line
  warning names it) and the job goes to the next host; submitting fails
  only when no host takes it.  A finished job's folder is removed from its
  host once its outputs are back (a failed one stays, for inspection).

Connection details (user, port, keys, ProxyJump, ControlMaster) come from
``~/.ssh/config`` and the user's agent; nothing secret is ever read or written.
Job records live in ``.snakemake/knowledge-map-tensor/jobs/`` of the workdir.

Modules, in the order a job meets them:

- ``hosts``      the profile's ``hosts.yaml`` and the order to try hosts in
- ``jobscript``  what Snakemake hands the submit command; its paths moved to a host
- ``remote``     the one ssh/rsync runner and the shell scripts in ``scripts/``
- ``records``    job records and hosts set aside, in the workdir
- ``commands``   submit, status and cancel
- ``cli``        ``python -m knowledge_map.cluster`` (what ``profiles/tensor/{submit,status,cancel}`` call)
- ``gpu_slots``  on the host: claim a GPU with ``flock`` and run the job under it
- ``progress``   per-shard state, rate and ETA of any run (``python -m knowledge_map progress``)
"""
