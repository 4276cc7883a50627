# Adaptor: frozen encoders embedded once, a small Adaptor trained on the cache, downstream fan-out.
from snakemake.utils import min_version

min_version("9.0")


# The demo's settings apply only when no --configfile is given: a named configuration (e.g.
# config/paper.yaml) is complete and alone, with the schema's defaults beneath it.
if not workflow.overwrite_configfiles:

    configfile: "config/demo.yaml"


report: "report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand(PATHS["manifest"], dataset=DATASETS),
        f"{PATHS['tables']}/classification.parquet",
        f"{PATHS['tables']}/pretraining.parquet",
        PATHS["report"],
        rules.figures.output,
