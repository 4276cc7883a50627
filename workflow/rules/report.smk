rule report:
    input:
        runs=all_runs("classification", CLASSIFICATION["datasets"]),
        segmentation=all_runs("segmentation", SEGMENTATION["datasets"]),
        zeroshot=all_zeroshot_runs(),
        pretrain_metrics=all_pretrain_metrics(),
    output:
        classification="results/tables/classification.parquet",
        segmentation="results/tables/segmentation.parquet",
        zeroshot="results/tables/zeroshot.parquet",
        pretraining="results/tables/pretraining.parquet",
        retrieval="results/tables/retrieval.parquet",
        wall_time="results/tables/wall_time.parquet",
        report="results/report.md",
    log:
        "logs/report/report.log",
    benchmark:
        "results/benchmarks/report/report.tsv"
    conda:
        "../../envs/adaptor.yaml"
    shell:
        "python -m adaptor report --runs {input.runs:q} --segmentation-runs {input.segmentation:q}"
        " --zeroshot-runs {input.zeroshot:q} --pretrain-metrics {input.pretrain_metrics:q}"
        " --benchmarks-dir results/benchmarks --out-dir results/tables"
        " --report {output.report:q} > {log:q} 2>&1"
