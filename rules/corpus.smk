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
        # The packaged corpus is not an input (see rules/common.smk): its content is.
        packaged=get_packaged_corpus_digest,
    script:
        "../scripts/prepare_corpus.py"
