rule umap_map:
    input:
        f"{MODEL_DIR}/embeddings.h5",
    output:
        coords=f"{MAP_DIR}/coords.h5",
        reducer=f"{MAP_DIR}/reducer.pkl",
    log:
        f"{MODEL_DIR}/logs/umap_map.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/umap_map.tsv"
    conda:
        "../envs/map.yaml"
    threads: 2
    params:
        umap=config["umap"],
        code=RULE_CODE["umap_map"],
    script:
        "../scripts/umap_map.py"


rule place_questions:
    input:
        questions=get_questions_input,
        question_embeddings=f"{MODEL_DIR}/questions.h5",
        embeddings=f"{MODEL_DIR}/embeddings.h5",
        coords=f"{MAP_DIR}/coords.h5",
    output:
        f"{MAP_DIR}/questions.json",
    log:
        f"{MODEL_DIR}/logs/place_questions.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/place_questions.tsv"
    conda:
        "../envs/map.yaml"
    params:
        placement=config["placement"],
        # The questions' content (the packaged set is not an input, see rules/common.smk; a file may be replaced by
        # an older one, which Snakemake's mtime check misses).
        questions_content=get_questions_digest,
        code=RULE_CODE["place_questions"],
    script:
        "../scripts/place_questions.py"


rule cell_labels:
    input:
        corpus=f"{RESULTS}/corpus.parquet",
        embeddings=f"{MODEL_DIR}/embeddings.h5",
        coords=f"{MAP_DIR}/coords.h5",
    output:
        f"{MAP_DIR}/cell_labels.json",
    log:
        f"{MODEL_DIR}/logs/cell_labels.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/cell_labels.tsv"
    conda:
        # Names are chosen by embedding them with the articles' model.
        "../envs/embed.yaml"
    params:
        labels=config["labels"],
        model=config["model"]["name"],
        max_seq_length=config["model"]["max_seq_length"],
        prompt=config["model"]["prompt"],
        backend=config["model"]["backend"],
        cache_dir=OPENVINO_CACHE,
        # Changing the model's files relabels (and re-embeds): see knowledge_map/identity.py.
        model_files=MODEL_FILES,
        # Changing the labelling code relabels: see knowledge_map/triggers.py.
        code=LABEL_CODE,
    script:
        "../scripts/cell_labels.py"


rule map_metrics:
    input:
        corpus=f"{RESULTS}/corpus.parquet",
        embeddings=f"{MODEL_DIR}/embeddings.h5",
        coords=f"{MAP_DIR}/coords.h5",
        questions=f"{MAP_DIR}/questions.json",
        knowledge_lists=f"{MAP_DIR}/knowledge_lists.h5",
        question_embeddings=f"{MODEL_DIR}/questions.h5",
        labels=f"{MAP_DIR}/cell_labels.json",
    output:
        report(
            f"{MAP_DIR}/metrics.json",
            caption="../report/metrics.rst",
            category="Metrics",
        ),
    log:
        f"{MODEL_DIR}/logs/map_metrics.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/map_metrics.tsv"
    conda:
        "../envs/map.yaml"
    params:
        metrics=config["metrics"],
        code=RULE_CODE["map_metrics"],
    script:
        "../scripts/map_metrics.py"
