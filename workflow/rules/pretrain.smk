rule pretrain:
    input:
        unpack(get_pretrain_caches),
        manifest=PATHS["manifest"].format(dataset=PRETRAIN["dataset"]),
    output:
        weights=f"{PATHS['adaptor']}/{ADAPTOR_FILES['weights']}",
        config=f"{PATHS['adaptor']}/{ADAPTOR_FILES['adaptor_config']}",
        metrics=f"{PATHS['adaptor']}/{ADAPTOR_FILES['metrics']}",
    log:
        "logs/pretrain/{image_encoder}/{text_encoder}/{mode}.log",
    benchmark:
        "results/benchmarks/pretrain/{image_encoder}/{text_encoder}/{mode}.tsv"
    priority: 1
    conda:
        GPU_ENV if PRETRAIN["gpus"] else CPU_ENV
    threads: THREADS["pretrain"]
    resources:
        **gpu_resources(PRETRAIN["gpus"]),
        mem_mb=memory(16000),
        runtime=pretrain_minutes,
    params:
        settings=lambda wildcards: as_json(
            {
                k: v
                for k, v in PRETRAIN.items()
                if k
                not in ("dataset", "image_encoders", "text_encoders", "modes", "gpus")
            }
            | {"mode": wildcards.mode}
        ),
        # From the rule's own files, so that it holds wherever storage puts them.
        out_dir=lambda wildcards, output: os.path.dirname(output.weights),
        image_spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
        text_spec=lambda wildcards: as_json(TEXT_ENCODERS[wildcards.text_encoder]),
    shell:
        "python -m adaptor pretrain --manifest {input.manifest:q} --image-cache {input.image:q}"
        " --text-cache {input.text:q} --image-encoder {wildcards.image_encoder:q} --image-spec {params.image_spec:q}"
        " --text-encoder {wildcards.text_encoder:q} --text-spec {params.text_spec:q}"
        " --settings {params.settings:q} --out-dir {params.out_dir:q} --threads {threads:q}"
        " --gpus {resources.gpu:q} > {log:q} 2>&1"


rule adaptor_features:
    input:
        unpack(
            lambda wildcards: get_cache(
                wildcards.dataset, "image", wildcards.image_encoder, "image"
            )
        ),
        unpack(get_adaptor),
    output:
        directory(PATHS["adaptor_features"]),
    log:
        "logs/adaptor_features/{dataset}/{image_encoder}/{text_encoder}/{mode}.log",
    benchmark:
        "results/benchmarks/adaptor_features/{dataset}/{image_encoder}/{text_encoder}/{mode}.tsv"
    priority: 1
    conda:
        CPU_ENV
    threads: THREADS["pretrain"]
    resources:
        mem_mb=memory(8000),
    params:
        adaptor_dir=lambda wildcards, input: os.path.dirname(input.weights),
        image_spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
    shell:
        "python -m adaptor features --image-cache {input.image:q} --image-encoder {wildcards.image_encoder:q}"
        " --image-spec {params.image_spec:q} --adaptor-dir {params.adaptor_dir:q}"
        " --out {output:q} --threads {threads:q} > {log:q} 2>&1"
