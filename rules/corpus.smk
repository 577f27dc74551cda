rule prepare_corpus:
    input:
        get_corpus_input,
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
    script:
        "../scripts/prepare_corpus.py"
