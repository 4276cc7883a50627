rule embed_image:
    input:
        "results/manifests/{dataset}.parquet",
    output:
        directory("results/cache/{dataset}/image/{image_encoder}.zarr"),
    log:
        "logs/embed_image/{dataset}/{image_encoder}.log",
    benchmark:
        "results/benchmarks/embed_image/{dataset}/{image_encoder}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    threads: 2
    params:
        spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
        settings=as_json(config["embed"]),
    shell:
        "python -m adaptor embed --manifest {input} --encoder {wildcards.image_encoder} --modality image"
        " --spec {params.spec} --settings {params.settings} --out {output} --threads {threads} > {log} 2>&1"


rule embed_text:
    input:
        "results/manifests/{dataset}.parquet",
    output:
        directory("results/cache/{dataset}/text/{text_encoder}.zarr"),
    log:
        "logs/embed_text/{dataset}/{text_encoder}.log",
    benchmark:
        "results/benchmarks/embed_text/{dataset}/{text_encoder}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    threads: 2
    params:
        spec=lambda wildcards: as_json(TEXT_ENCODERS[wildcards.text_encoder]),
        settings=as_json(config["embed"]),
    shell:
        "python -m adaptor embed --manifest {input} --encoder {wildcards.text_encoder} --modality text"
        " --spec {params.spec} --settings {params.settings} --out {output} --threads {threads} > {log} 2>&1"
