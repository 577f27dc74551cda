# knowledge-map: Wikipedia articles -> embeddings -> UMAP -> a labelled knowledge map.
# Stages, in order, each in rules/; settings in config/config.yaml (validated
# against knowledge_map/schemas/config.schema.yaml); resources in profiles/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/embed.smk"
include: "rules/map.smk"
include: "rules/knowledge.smk"
include: "rules/site.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
