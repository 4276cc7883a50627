rule subsets:
    input:
        manifest=PATHS["manifest"],
        prepare_rejects=PATHS["prepare_rejects"],
    output:
        subsets_path("{dataset}", "{task}"),
    log:
        "logs/subsets/{dataset}/{task}/{seed}.log",
    benchmark:
        "results/benchmarks/subsets/{dataset}/{task}/{seed}.tsv"
    wildcard_constraints:
        task="classification|segmentation",
    conda:
        CPU_ENV
    params:
        fractions=FRACTIONS,
        protocol=EVALUATE["protocol"],
        reader=lambda wildcards: DATASETS[wildcards.dataset]["reader"],
    shell:
        "python -m adaptor subsets --manifest {input.manifest:q} --prepare-rejects {input.prepare_rejects:q}"
        " --fractions {params.fractions:q} --seeds {wildcards.seed:q} --protocol {params.protocol:q}"
        " --task {wildcards.task:q} --reader {params.reader:q} --out {output:q} > {log:q} 2>&1"


rule zeroshot_split:
    input:
        manifest=PATHS["manifest"],
        prepare_rejects=PATHS["prepare_rejects"],
    output:
        subsets_path("{dataset}", "zeroshot"),
    log:
        "logs/zeroshot_split/{dataset}.log",
    benchmark:
        "results/benchmarks/zeroshot_split/{dataset}.tsv"
    conda:
        CPU_ENV
    params:
        protocol=EVALUATE["protocol"],
        reader=lambda wildcards: DATASETS[wildcards.dataset]["reader"],
    shell:
        "python -m adaptor subsets --manifest {input.manifest:q} --prepare-rejects {input.prepare_rejects:q}"
        " --protocol {params.protocol:q} --task zeroshot --reader {params.reader:q}"
        " --out {output:q} > {log:q} 2>&1"


rule evaluate_classification:
    input:
        unpack(get_features),
        manifest=PATHS["manifest"],
        subsets=subsets_path("{dataset}", "classification"),
    output:
        seed_cells("classification"),
    log:
        "logs/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{seed}.tsv"
    conda:
        GPU_ENV if CLASSIFICATION["gpus"] else CPU_ENV
    resources:
        **gpu_resources(CLASSIFICATION["gpus"]),
        mem_mb=memory(4000),
    params:
        settings=as_json(CLASSIFICATION["head"]),
        text_encoder=get_text_encoder_argument,
        fractions=FRACTIONS,
    shell:
        "python -m adaptor evaluate --manifest {input.manifest:q} --features {input.features:q}"
        " --exclude {input.features_rejects:q} --subsets {input.subsets:q} --seed {wildcards.seed:q}"
        " --fractions {params.fractions:q} --method {wildcards.method:q} --image-encoder {wildcards.image_encoder:q}"
        " --text-encoder={params.text_encoder:q} --settings {params.settings:q} --out {output:q}"
        " --gpus {resources.gpu:q} > {log:q} 2>&1"


rule masks:
    input:
        manifest=PATHS["manifest"],
    output:
        directory(PATHS["masks"]),
    log:
        "logs/masks/{dataset}/{image_encoder}.log",
    benchmark:
        "results/benchmarks/masks/{dataset}/{image_encoder}.tsv"
    conda:
        CPU_ENV
    resources:
        mem_mb=memory(4000),
    params:
        image_spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
    shell:
        "python -m adaptor masks --manifest {input.manifest:q} --image-spec {params.image_spec:q}"
        " --out {output:q} > {log:q} 2>&1"


rule evaluate_segmentation:
    input:
        unpack(get_segmentation_inputs),
        manifest=PATHS["manifest"],
        subsets=subsets_path("{dataset}", "segmentation"),
        masks=PATHS["masks"],
    output:
        seed_cells("segmentation"),
    log:
        "logs/evaluate_segmentation/{dataset}/{method}/{image_encoder}/{text_encoder}/{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_segmentation/{dataset}/{method}/{image_encoder}/{text_encoder}/{seed}.tsv"
    conda:
        GPU_ENV if SEGMENTATION["gpus"] else CPU_ENV
    threads: 1
    resources:
        **gpu_resources(SEGMENTATION["gpus"]),
        mem_mb=memory(16000),
    params:
        settings=as_json(SEGMENTATION["decoder"]),
        text_encoder=get_text_encoder_argument,
        image_encoder=get_image_encoder,
        image_spec=lambda wildcards: as_json(
            IMAGE_ENCODERS[get_image_encoder(wildcards)]
        ),
        stage_indices=as_json(EMBED["stage_indices"]),
        fractions=FRACTIONS,
    shell:
        "python -m adaptor segment --manifest {input.manifest:q} --features {input.features:q}"
        " --image-cache {input.image:q} --image-cache-encoder {params.image_encoder:q}"
        " --masks {input.masks:q} --image-spec {params.image_spec:q}"
        " --exclude {input.features_rejects:q} --subsets {input.subsets:q} --seed {wildcards.seed:q}"
        " --fractions {params.fractions:q} --method {wildcards.method:q} --image-encoder {wildcards.image_encoder:q}"
        " --text-encoder={params.text_encoder:q} --settings {params.settings:q} --out {output:q}"
        " --threads {threads:q} --gpus {resources.gpu:q} --memory-mb {resources.mem_mb:q}"
        " --stage-indices {params.stage_indices:q} > {log:q} 2>&1"


rule evaluate_zeroshot:
    input:
        unpack(get_features),
        unpack(get_adaptor),
        manifest=PATHS["manifest"],
        subsets=subsets_path("{dataset}", "zeroshot"),
    output:
        PATHS["zeroshot_run"],
    log:
        "logs/evaluate_zeroshot/{dataset}/{method}/{image_encoder}/{text_encoder}.log",
    benchmark:
        "results/benchmarks/evaluate_zeroshot/{dataset}/{method}/{image_encoder}/{text_encoder}.tsv"
    conda:
        CPU_ENV
    resources:
        mem_mb=memory(8000),
    params:
        prompts=lambda wildcards: as_json(ZEROSHOT_PROMPTS[wildcards.dataset]),
        text_spec=lambda wildcards: as_json(TEXT_ENCODERS[wildcards.text_encoder]),
        adaptor_dir=lambda wildcards, input: os.path.dirname(input.weights),
    shell:
        "python -m adaptor zeroshot --manifest {input.manifest:q} --features {input.features:q}"
        " --exclude {input.features_rejects:q} --method {wildcards.method:q} --image-encoder {wildcards.image_encoder:q}"
        " --text-encoder {wildcards.text_encoder:q} --text-spec {params.text_spec:q}"
        " --adaptor-dir {params.adaptor_dir:q} --subsets {input.subsets:q} --settings {params.prompts:q}"
        " --out {output:q} > {log:q} 2>&1"
