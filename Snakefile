# Adaptor: frozen encoders embedded once, a small Adaptor trained on the cache, downstream fan-out.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/manifests/{dataset}.parquet", dataset=DATASETS),
        "results/tables/classification.parquet",
        "results/tables/pretraining.parquet",
        "results/report.md",
