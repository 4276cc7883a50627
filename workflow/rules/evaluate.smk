rule subsets:
    input:
        manifest="results/manifests/{dataset}.parquet",
        exclude=get_embed_rejects,
    output:
        "results/subsets/{dataset}.parquet",
    log:
        "logs/subsets/{dataset}.log",
    conda:
        "../../envs/adaptor.yaml"
    params:
        fractions=" ".join(fraction_label(f) for f in EVALUATE["fractions"]),
        seeds=" ".join(str(s) for s in EVALUATE["seeds"]),
        protocol=EVALUATE["protocol"],
    shell:
        "python -m adaptor subsets --manifest {input.manifest} --exclude {input.exclude}"
        " --fractions {params.fractions} --seeds {params.seeds} --protocol {params.protocol}"
        " --out {output} > {log} 2>&1"


rule evaluate_classification:
    input:
        unpack(get_features),
        manifest="results/manifests/{dataset}.parquet",
        exclude=get_embed_rejects,
        subsets="results/subsets/{dataset}.parquet",
    output:
        "results/runs/{dataset}/classification/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.parquet",
    log:
        "logs/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_classification/{dataset}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.tsv"
    conda:
        "../../envs/adaptor.yaml"
    params:
        settings=as_json(EVALUATE["head"]),
        text_encoder=lambda wildcards: (
            "" if wildcards.text_encoder == "none" else wildcards.text_encoder
        ),
    shell:
        "python -m adaptor evaluate --manifest {input.manifest} --features {input.features}"
        " --subsets {input.subsets} --exclude {input.exclude} --fraction {wildcards.fraction} --seed {wildcards.seed}"
        " --method {wildcards.method} --image-encoder {wildcards.image_encoder}"
        " --text-encoder '{params.text_encoder}' --settings {params.settings} --out {output} > {log} 2>&1"
