rule prepare_corpus:
    input:
        corpus=get_corpus_input,
    output:
        corpus=f"{RESULTS}/corpus.parquet",
        manifest=f"{RESULTS}/corpus.manifest.json",
    log:
        f"{RESULTS}/logs/prepare_corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_corpus.tsv"
    conda:
        "../envs/map.yaml"
    params:
        source=config["corpus"]["source"],
        limit=config["corpus"]["limit"],
        allow_pickle=config["corpus"]["allow_pickle"],
        # The corpus's content (the packaged one is not an input, see rules/common.smk; a user's file may be
        # replaced by an older one, which Snakemake's mtime check misses).
        content=get_corpus_digest,
        code=RULE_CODE["prepare_corpus"],
    script:
        "../scripts/prepare_corpus.py"
