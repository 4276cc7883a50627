rule figures:
    input:
        **{name: f"{PATHS['tables']}/{name}.parquet" for name in FIGURE_TABLES},
    output:
        figure_outputs(),
    log:
        "logs/figures/figures.log",
    benchmark:
        "results/benchmarks/figures/figures.tsv"
    conda:
        CPU_ENV
    params:
        classification=CLASSIFICATION["datasets"],
        segmentation=SEGMENTATION["datasets"],
        zeroshot=list(ZEROSHOT_PROMPTS),
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m adaptor figures --summary {input.summary:q} --zeroshot {input.zeroshot:q}"
        " --pretraining {input.pretraining:q} --pretraining-curves {input.pretraining_curves:q}"
        " --retrieval {input.retrieval:q} --classification-datasets {params.classification:q}"
        " --segmentation-datasets {params.segmentation:q} --zeroshot-datasets {params.zeroshot:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule report:
    input:
        runs=all_runs("classification", CLASSIFICATION["datasets"]),
        segmentation=all_runs("segmentation", SEGMENTATION["datasets"]),
        zeroshot=all_zeroshot_runs(),
        pretrain_metrics=all_pretrain_metrics(),
    output:
        **report_table_outputs(),
        classification=f"{PATHS['tables']}/classification.parquet",
        segmentation=f"{PATHS['tables']}/segmentation.parquet",
        zeroshot=f"{PATHS['tables']}/zeroshot.parquet",
        pretraining=f"{PATHS['tables']}/pretraining.parquet",
        pretraining_curves=f"{PATHS['tables']}/pretraining_curves.parquet",
        retrieval=f"{PATHS['tables']}/retrieval.parquet",
        wall_time=f"{PATHS['tables']}/wall_time.parquet",
        summary=f"{PATHS['tables']}/summary.parquet",
        report=PATHS["report"],
    log:
        "logs/report/report.log",
    benchmark:
        "results/benchmarks/report/report.tsv"
    conda:
        CPU_ENV
    params:
        # The names of each metrics file's encoders, in order: the tables take them from here,
        # not from the file's path.
        pretrain_encoders=as_json([[image, text] for image, text, _ in all_adaptors()]),
        benchmarks=PATHS["benchmarks"],
        tables=lambda wildcards, output: os.path.dirname(output.classification),
        html_dir=lambda wildcards, output: os.path.dirname(output.classification_html),
        pretrain_dataset=PRETRAIN["dataset"],
        demo="--demo" if is_demo_run() else "",
    shell:
        "python -m adaptor report --runs {input.runs:q} --segmentation-runs {input.segmentation:q}"
        " --zeroshot-runs {input.zeroshot:q} --pretrain-metrics {input.pretrain_metrics:q}"
        " --pretrain-encoders {params.pretrain_encoders:q}"
        " --benchmarks-dir {params.benchmarks:q} --out-dir {params.tables:q}"
        " --report {output.report:q} --html-dir {params.html_dir:q}"
        " --pretrain-dataset {params.pretrain_dataset:q} {params.demo} > {log:q} 2>&1"
