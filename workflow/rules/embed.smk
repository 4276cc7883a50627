# One (dataset, modality, encoder) cache. With embed.parts 1 it is one embed job. With more, three
# steps: embed_init creates the empty Zarr group, embed.parts embed_part jobs fill disjoint shard
# ranges of it (each resumes where a killed run stopped), and embed_finalize checks every shard and
# writes the rejects table that later rules take as the sign of a complete cache.

if EMBED["parts"] == 1:

    rule embed:
        input:
            PATHS["manifest"],
        output:
            cache=directory(PATHS["cache"]),
            rejects=PATHS["cache_rejects"],
        log:
            "logs/embed/{dataset}/{modality}/{encoder}.log",
        benchmark:
            "results/benchmarks/embed/{dataset}/{modality}/{encoder}.tsv"
        priority: pretraining_first
        conda:
            CPU_ENV
        threads: THREADS["embed"]
        resources:
            **gpu_resources(EMBED["gpus"]),
            mem_mb=memory(8000),
            runtime=embed_minutes,
            loader_workers=EMBED["num_workers"],
        params:
            spec=get_encoder_spec,
            settings=get_embed_settings,
        shell:
            "python -m adaptor embed --manifest {input:q} --encoder {wildcards.encoder:q}"
            " --modality {wildcards.modality:q} --spec {params.spec:q} --settings {params.settings:q}"
            " --workers {resources.loader_workers:q} --threads {threads:q} --out {output.cache:q}"
            " --rejects {output.rejects:q} --gpus {resources.gpu:q} > {log:q} 2>&1"

else:

    rule embed_init:
        input:
            PATHS["manifest"],
        output:
            directory(PATHS["cache"]),
        log:
            "logs/embed_init/{dataset}/{modality}/{encoder}.log",
        benchmark:
            "results/benchmarks/embed_init/{dataset}/{modality}/{encoder}.tsv"
        priority: pretraining_first
        conda:
            CPU_ENV
        params:
            spec=get_encoder_spec,
            settings=get_embed_settings,
        shell:
            "python -m adaptor embed-init --manifest {input:q} --encoder {wildcards.encoder:q}"
            " --modality {wildcards.modality:q} --spec {params.spec:q} --settings {params.settings:q}"
            " --out {output:q} > {log:q} 2>&1"

    rule embed_part:
        input:
            manifest=PATHS["manifest"],
            cache=PATHS["cache"],
        output:
            PATHS["cache_part"],
        log:
            "logs/embed_part/{dataset}/{modality}/{encoder}/{part}.log",
        benchmark:
            "results/benchmarks/embed_part/{dataset}/{modality}/{encoder}/{part}.tsv"
        priority: pretraining_first
        conda:
            CPU_ENV
        threads: THREADS["embed"]
        resources:
            **gpu_resources(EMBED["gpus"]),
            mem_mb=memory(8000),
            runtime=embed_minutes,
            loader_workers=EMBED["num_workers"],
        params:
            spec=get_encoder_spec,
            settings=get_embed_settings,
            parts=EMBED["parts"],
        shell:
            "python -m adaptor embed-part --manifest {input.manifest:q} --encoder {wildcards.encoder:q}"
            " --modality {wildcards.modality:q} --spec {params.spec:q} --settings {params.settings:q}"
            " --cache {input.cache:q} --part {wildcards.part:q} --parts {params.parts:q}"
            " --workers {resources.loader_workers:q} --report {output:q} --threads {threads:q}"
            " --gpus {resources.gpu:q} > {log:q} 2>&1"

    rule embed_finalize:
        input:
            manifest=PATHS["manifest"],
            cache=PATHS["cache"],
            parts=get_embed_parts,
        output:
            PATHS["cache_rejects"],
        log:
            "logs/embed_finalize/{dataset}/{modality}/{encoder}.log",
        benchmark:
            "results/benchmarks/embed_finalize/{dataset}/{modality}/{encoder}.tsv"
        priority: pretraining_first
        conda:
            CPU_ENV
        shell:
            "python -m adaptor embed-finalize --manifest {input.manifest:q} --modality {wildcards.modality:q}"
            " --cache {input.cache:q} --rejects {output:q} > {log:q} 2>&1"
