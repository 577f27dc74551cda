# What a learner knows: question embeddings, difficulty calibration, the
# per-question neighbour lists the page estimates from, and the validation
# against past learners' answers (only with config responses).


rule embed_questions:
    input:
        questions=get_questions_input,
        # Read for the engine record's probe texts (knowledge_map/engine_restart.py).
        corpus=f"{RESULTS}/corpus.parquet",
        # The articles' space: questions are embedded in it (checked, recorded) and redone when it is.
        embeddings=f"{MODEL_DIR}/embeddings.h5",
    output:
        f"{MODEL_DIR}/questions.h5",
    log:
        f"{MODEL_DIR}/logs/embed_questions.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/embed_questions.tsv"
    conda:
        "../envs/embed.yaml"
    params:
        model=config["model"]["name"],
        max_seq_length=config["model"]["max_seq_length"],
        prompt=config["model"]["prompt"],
        backend=config["model"]["backend"],
        cache_dir=OPENVINO_CACHE,
        # The questions' content (the packaged set is not an input, see rules/common.smk; a file may be replaced by
        # an older one, which Snakemake's mtime check misses).
        questions_content=get_questions_digest,
        model_files=MODEL_FILES,
        code=QUESTION_CODE,
    script:
        "../scripts/embed_questions.py"


rule calibrate_questions:
    input:
        questions=get_questions_input,
        responses=get_responses_input,
    output:
        f"{RESULTS}/calibration.json",
    log:
        f"{RESULTS}/logs/calibrate_questions.log",
    benchmark:
        f"{RESULTS}/benchmarks/calibrate_questions.tsv"
    conda:
        "../envs/map.yaml"
    params:
        questions_content=get_questions_digest,
        responses_content=get_responses_digest,
        code=RULE_CODE["calibrate_questions"],
    script:
        "../scripts/calibrate_questions.py"


rule knowledge_lists:
    input:
        embeddings=f"{MODEL_DIR}/embeddings.h5",
        question_embeddings=f"{MODEL_DIR}/questions.h5",
        coords=f"{MAP_DIR}/coords.h5",
        questions=f"{MAP_DIR}/questions.json",
    output:
        f"{MAP_DIR}/knowledge_lists.h5",
    log:
        f"{MODEL_DIR}/logs/knowledge_lists.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/knowledge_lists.tsv"
    conda:
        "../envs/map.yaml"
    params:
        heatmap=config["heatmap"],
        code=RULE_CODE["knowledge_lists"],
    script:
        "../scripts/knowledge_lists.py"


rule validate_knowledge:
    input:
        questions=get_questions_input,
        responses=get_responses_input,
        question_embeddings=f"{MODEL_DIR}/questions.h5",
        placed=f"{MAP_DIR}/questions.json",
        # What the page reads its estimate from, to score its readout at each question too.
        knowledge_lists=f"{MAP_DIR}/knowledge_lists.h5",
        coords=f"{MAP_DIR}/coords.h5",
    output:
        predictions=f"{MODEL_DIR}/validation/predictions.csv",
        summary=report(
            f"{MODEL_DIR}/validation/summary.json",
            caption="../report/validation.rst",
            category="Validation",
        ),
    log:
        f"{MODEL_DIR}/logs/validate_knowledge.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/validate_knowledge.tsv"
    conda:
        "../envs/map.yaml"
    params:
        heatmap=config["heatmap"],
        validation=config["validation"],
        questions_content=get_questions_digest,
        responses_content=get_responses_digest,
        code=RULE_CODE["validate_knowledge"],
    script:
        "../scripts/validate_knowledge.py"
