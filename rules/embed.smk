rule embed_shard:
    input:
        corpus=f"{RESULTS}/corpus.parquet",
    output:
        f"{MODEL_DIR}/shards/shard-{{shard}}.h5",
    log:
        f"{MODEL_DIR}/logs/embed/shard-{{shard}}.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/embed/shard-{{shard}}.tsv"
    conda:
        "../envs/embed.yaml"
    threads: 4
    resources:
        gpu=1,
        # Each retry (after an out-of-memory error, usually) halves the batch.
        batch_size=lambda wildcards, attempt: max(
            1, config["model"]["batch_size"] // 2 ** (attempt - 1)
        ),
    params:
        model=config["model"]["name"],
        max_seq_length=config["model"]["max_seq_length"],
        dtype=config["model"]["dtype"],
        prompt=config["model"]["prompt"],
        backend=config["model"]["backend"],
        cpu_precision=config["model"]["cpu_precision"],
        int8=config["model"]["int8"],
        cache_dir=OPENVINO_CACHE,
        n_shards=config["shards"],
        # Changing the embedding code re-embeds (params trigger); see knowledge_map/triggers.py.
        code=EMBED_CODE,
        # Changing the model's files (e.g. model.safetensors) re-embeds too.
        model_files=MODEL_FILES,
    script:
        "../scripts/embed_shard.py"


rule merge_shards:
    input:
        shards=get_shards,
        corpus=f"{RESULTS}/corpus.parquet",
    output:
        f"{MODEL_DIR}/embeddings.h5",
    log:
        f"{MODEL_DIR}/logs/merge_shards.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/merge_shards.tsv"
    conda:
        "../envs/map.yaml"
    params:
        model=config["model"]["name"],
        code=RULE_CODE["merge_shards"],
    script:
        "../scripts/merge_shards.py"
