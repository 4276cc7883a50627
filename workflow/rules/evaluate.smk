rule subsets:
    input:
        manifest="results/manifests/{dataset}.parquet",
        prepare_rejects="results/manifests/{dataset}.rejects.parquet",
        exclude=get_embed_rejects,
    output:
        "results/subsets/{dataset}/{task}.parquet",
    log:
        "logs/subsets/{dataset}/{task}.log",
    conda:
        "../../envs/adaptor.yaml"
    params:
        fractions=" ".join(fraction_label(f) for f in EVALUATE["fractions"]),
        seeds=" ".join(str(s) for s in EVALUATE["seeds"]),
        protocol=EVALUATE["protocol"],
        reader=lambda wildcards: DATASETS[wildcards.dataset]["reader"],
    shell:
        "python -m adaptor subsets --manifest {input.manifest} --exclude {input.exclude}"
        " --prepare-rejects {input.prepare_rejects}"
        " --fractions {params.fractions} --seeds {params.seeds} --protocol {params.protocol}"
        " --task {wildcards.task} --reader {params.reader} --out {output} > {log} 2>&1"


rule evaluate_classification:
    input:
        unpack(get_features),
        manifest="results/manifests/{dataset}.parquet",
        exclude=get_embed_rejects,
        subsets="results/subsets/{dataset}/classification.parquet",
    output:
        "results/runs/{dataset}/classification/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.parquet",
    log:
        "logs/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    params:
        settings=as_json(CLASSIFICATION["head"]),
        text_encoder=get_text_encoder_argument,
    shell:
        "python -m adaptor evaluate --manifest {input.manifest} --features {input.features}"
        " --subsets {input.subsets} --exclude {input.exclude} --fraction {wildcards.fraction} --seed {wildcards.seed}"
        " --method {wildcards.method} --image-encoder {wildcards.image_encoder}"
        " --text-encoder '{params.text_encoder}' --settings {params.settings} --out {output} > {log} 2>&1"


rule masks:
    input:
        manifest="results/manifests/{dataset}.parquet",
    output:
        directory("results/masks/{dataset}/{image_encoder}.zarr"),
    log:
        "logs/masks/{dataset}/{image_encoder}.log",
    conda:
        "../../envs/adaptor.yaml"
    params:
        image_spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
    shell:
        "python -m adaptor masks --manifest {input.manifest} --image-spec {params.image_spec}"
        " --out {output} > {log} 2>&1"


rule evaluate_segmentation:
    input:
        unpack(get_features),
        manifest="results/manifests/{dataset}.parquet",
        exclude=get_embed_rejects,
        subsets="results/subsets/{dataset}/segmentation.parquet",
        masks=lambda wildcards: masks_path(wildcards.dataset, wildcards.image_encoder),
    output:
        "results/runs/{dataset}/segmentation/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.parquet",
    log:
        "logs/evaluate_segmentation/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_segmentation/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    threads: 1
    params:
        settings=as_json(SEGMENTATION["decoder"]),
        text_encoder=get_text_encoder_argument,
        image_spec=lambda wildcards: as_json(IMAGE_ENCODERS[wildcards.image_encoder]),
    shell:
        "python -m adaptor segment --manifest {input.manifest} --features {input.features}"
        " --masks {input.masks} --image-spec {params.image_spec}"
        " --subsets {input.subsets} --exclude {input.exclude} --fraction {wildcards.fraction} --seed {wildcards.seed}"
        " --method {wildcards.method} --image-encoder {wildcards.image_encoder}"
        " --text-encoder '{params.text_encoder}' --settings {params.settings} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule evaluate_zeroshot:
    input:
        unpack(get_features),
        unpack(get_adaptor),
        manifest="results/manifests/{dataset}.parquet",
        exclude=get_embed_rejects,
        subsets="results/subsets/{dataset}/zeroshot.parquet",
    output:
        "results/runs/{dataset}/zeroshot/{method}/{image_encoder}/{text_encoder}.parquet",
    log:
        "logs/evaluate_zeroshot/{dataset}/{method}/{image_encoder}/{text_encoder}.log",
    benchmark:
        "results/benchmarks/evaluate_zeroshot/{dataset}/{method}/{image_encoder}/{text_encoder}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    params:
        prompts=lambda wildcards: as_json(ZEROSHOT_PROMPTS[wildcards.dataset]),
        text_spec=lambda wildcards: as_json(TEXT_ENCODERS[wildcards.text_encoder]),
        adaptor_dir=lambda wildcards: adaptor_dir(
            wildcards.image_encoder,
            wildcards.text_encoder,
            ADAPTOR_MODES[wildcards.method],
        ),
    shell:
        "python -m adaptor zeroshot --manifest {input.manifest} --features {input.features}"
        " --exclude {input.exclude} --method {wildcards.method} --image-encoder {wildcards.image_encoder}"
        " --text-encoder {wildcards.text_encoder} --text-spec {params.text_spec}"
        " --adaptor-dir {params.adaptor_dir} --subsets {input.subsets} --settings {params.prompts}"
        " --out {output} > {log} 2>&1"
