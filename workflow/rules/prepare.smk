rule demo_data:
    output:
        directory("{demo_root}"),
    log:
        "logs/demo_data/{demo_root}.log",
    benchmark:
        "results/benchmarks/demo_data/{demo_root}.tsv"
    priority: pretraining_first
    conda:
        CPU_ENV
    params:
        reader=lambda wildcards: DATASETS[DEMO_ROOTS[wildcards.demo_root]]["reader"],
        n=lambda wildcards: config["demo"]["sizes"].get(
            DEMO_ROOTS[wildcards.demo_root], 200
        ),
        size=config["demo"]["image_size"],
        seed=config["demo"]["seed"],
    shell:
        "python -m adaptor demo --dataset {params.reader:q} --out {output:q} --n {params.n:q}"
        " --size {params.size:q} --seed {params.seed:q} > {log:q} 2>&1"


rule prepare:
    input:
        get_dataset_files,
    output:
        manifest=PATHS["manifest"],
        rejects=PATHS["prepare_rejects"],
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    priority: pretraining_first
    conda:
        CPU_ENV
    threads: THREADS["prepare"]
    params:
        settings=dataset_settings,
        on_error=config["on_error"],
    shell:
        "python -m adaptor prepare --dataset {wildcards.dataset:q} --settings {params.settings:q}"
        " --on-error {params.on_error:q} --workers {threads:q} --out {output.manifest:q}"
        " --rejects {output.rejects:q} > {log:q} 2>&1"
