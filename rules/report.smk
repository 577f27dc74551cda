rule map_figure:
    input:
        corpus=f"{RESULTS}/corpus.parquet",
        coords=f"{MAP_DIR}/coords.h5",
        labels=f"{MAP_DIR}/cell_labels.json",
        questions=f"{MAP_DIR}/questions.json",
    output:
        report(f"{MAP_DIR}/map.png", caption="../report/map.rst", category="Map"),
    log:
        f"{MODEL_DIR}/logs/map_figure.log",
    benchmark:
        f"{MODEL_DIR}/benchmarks/map_figure.tsv"
    conda:
        "../envs/map.yaml"
    params:
        model=config["model"]["name"],
        code=RULE_CODE["map_figure"],
    script:
        "../scripts/map_figure.py"


rule provenance:
    input:
        unpack(get_provenance_inputs),
    output:
        report(
            f"{MODEL_DIR}/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        f"{MODEL_DIR}/logs/provenance.log",
    conda:
        "../envs/map.yaml"
    params:
        # It records the whole config: any change of what a run makes (one that reruns only the site data too)
        # redoes it; a change of device, batch size or profile does not (knowledge_map/provenance.py).
        config=CONFIG_SHA256,
        code=RULE_CODE["provenance"],
    script:
        "../scripts/provenance.py"
