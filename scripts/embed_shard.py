"""Rule embed_shard: one slice of the corpus -> results/<model>/shards/shard-NNNN.h5."""

import torch

from knowledge_map.embed import embed_shard
from knowledge_map.workflow import run_rule


def main(snakemake):
    # The device is read from the config, not passed as a param, on purpose: every param of
    # embed_shard is a rerun trigger (the profiles' rerun-triggers include params), and Snakemake 9
    # has no way to exclude one param.  Where a shard is embedded (cpu, cuda, mps) is not part of
    # its identity (README, "Re-embeds"), so moving a run to a GPU must not re-embed finished
    # shards.  A resource would not trigger either, but resources are handed to the cluster
    # executors (slurm, the tensor dispatcher) as job requests, and a device name is not one.
    device = snakemake.config["model"]["device"]
    # Compiling the blocks is, like the device, how fast a shard is made, not what it holds (checked
    # against eager at cosine >= 0.999): switching it must not re-embed either.
    compile_setting = snakemake.config["model"]["compile"]
    torch.set_num_threads(snakemake.threads)
    embed_shard(
        snakemake.input.corpus,
        int(snakemake.wildcards.shard),
        snakemake.params.n_shards,
        snakemake.output[0],
        model_name=snakemake.params.model,
        max_seq_length=snakemake.params.max_seq_length,
        batch_size=snakemake.resources.batch_size,
        device=device,
        dtype=snakemake.params.dtype,
        prompt=snakemake.params.prompt,
        backend=snakemake.params.backend,
        cpu_precision=snakemake.params.cpu_precision,
        cache_dir=snakemake.params.cache_dir,
        int8=snakemake.params.int8,
        compile=compile_setting,
    )


run_rule(snakemake, main)  # noqa: F821 - injected by Snakemake
