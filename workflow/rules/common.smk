import json
import os
import re
import sys
from itertools import product

from snakemake.io import local
from snakemake.io import report as in_html_report
from snakemake.utils import validate

# The package's config checks and release table need only the standard library and PyYAML:
# importable from the checkout even where the package is not installed.
sys.path.insert(0, workflow.basedir)
from adaptor.config import ADAPTOR_MODES, check, image_encoders, random_twin, twin_base
from adaptor.data.releases import label_files
from adaptor.gpus import visible_gpus
from adaptor.resources import embed_runtime, manifest_rows, memory_mb, pretrain_runtime
from adaptor.results.figure_files import FIGURE_TABLES, figure_entries, table_entries

validate(config, "../../config/schema.yaml")
check(config)

DATASETS = config["datasets"]
IMAGE_ENCODERS = image_encoders(config)
TEXT_ENCODERS = config["encoders"]["text"]
ENCODERS = {"image": IMAGE_ENCODERS, "text": TEXT_ENCODERS}
THREADS = config["threads"]
EMBED = config["embed"]
PRETRAIN = config["pretrain"]
EVALUATE = config["evaluate"]
CLASSIFICATION = EVALUATE["classification"]
SEGMENTATION = EVALUATE["segmentation"]
ZEROSHOT_PROMPTS = EVALUATE["zeroshot"]["prompts"]

# GPUs. A GPU job asks for `embed.gpus` / `pretrain.gpus` as the resources `gpu` and `nvidia_gpu`
# with `gpu_manufacturer` (the names the SLURM, Kubernetes and Google Batch plugins read); CPU rules
# ask for none. Snakemake limits `gpu` only when told how many there are, which a profile cannot
# count: on a machine with GPUs the workflow tells it (unless `--resources gpu=N` did), so that no
# more GPU jobs run at once than there are GPUs, and each job claims its own (adaptor.gpus). On a
# machine without one, nothing is limited and the same jobs run on the CPU.
VISIBLE_GPUS = visible_gpus()
if VISIBLE_GPUS and "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", VISIBLE_GPUS)


# The rules' conda environments (`--sdm conda`): the GPU variant differs in its faiss build.
CPU_ENV = "../../envs/adaptor.yaml"
GPU_ENV = "../../envs/adaptor-gpu.yaml"


def gpu_resources(requested):
    return {"gpu": requested, "nvidia_gpu": requested, "gpu_manufacturer": "nvidia"}


def embed_minutes(wildcards, input, attempt):
    """An embedding job's time limit: its share of the manifest's rows (input 0)."""
    return embed_runtime(manifest_rows(input[0]), EMBED["parts"], attempt)


def pretrain_minutes(wildcards, input, attempt):
    return pretrain_runtime(manifest_rows(input.manifest), PRETRAIN["epochs"], attempt)


def memory(base_mb):
    """A rule's memory in MB, doubled on each retry."""
    return lambda wildcards, attempt: memory_mb(base_mb, attempt)


# Every file and folder the DAG writes, stated once. Rules use these patterns as they are (their
# fields are the rules' wildcards); input functions fill them in with `.format`.
PATHS = {
    "manifest": "results/manifests/{dataset}.parquet",
    "prepare_rejects": "results/manifests/{dataset}.rejects.parquet",
    "cache": "results/cache/{dataset}/{modality}/{encoder}.zarr",
    "cache_rejects": "results/cache/{dataset}/{modality}/{encoder}.rejects.parquet",
    "cache_part": "results/cache/{dataset}/{modality}/{encoder}.parts/{part}.json",
    "adaptor": "results/adaptors/{image_encoder}/{text_encoder}/{mode}",
    "adaptor_features": "results/cache/{dataset}/adaptor/{image_encoder}/{text_encoder}/{mode}.zarr",
    "masks": "results/masks/{dataset}/{image_encoder}.zarr",
    "subsets": "results/subsets/{dataset}/{task}/{seed}.parquet",
    "zeroshot_split": "results/subsets/{dataset}/zeroshot.parquet",
    "run": "results/runs/{dataset}/{task}/{method}/{image_encoder}/{text_encoder}/{fraction}/{seed}.parquet",
    "zeroshot_run": "results/runs/{dataset}/zeroshot/{method}/{image_encoder}/{text_encoder}.parquet",
    "tables": "results/tables",
    "report": "results/report.md",
    "figures": "results/figures",
    "report_tables": "results/report_tables",
    "benchmarks": "results/benchmarks",
}
# A trained Adaptor's files in its folder.
ADAPTOR_FILES = {
    "weights": "weights.safetensors",
    "adaptor_config": "config.json",
    "metrics": "metrics.json",
}


# Demo datasets are rendered into their configured root by the demo_data rule.
DEMO_ROOTS = {
    entry["root"]: name for name, entry in DATASETS.items() if entry.get("demo")
}


wildcard_constraints:
    dataset="|".join(DATASETS),
    image_encoder="|".join(re.escape(name) for name in IMAGE_ENCODERS),
    text_encoder="|".join([*TEXT_ENCODERS, "none"]),
    encoder="|".join(re.escape(name) for name in {*IMAGE_ENCODERS, *TEXT_ENCODERS}),
    modality="image|text",
    part="[0-9]+",
    method="|".join(["frozen", "random", *ADAPTOR_MODES]),
    mode="pooled|tokens",
    task="classification|segmentation|zeroshot",
    seed="[0-9]+",
    demo_root="|".join(re.escape(root) for root in DEMO_ROOTS) or "$^",


def pretraining_first(wildcards):
    """Scheduling priority: the pre-training set's data, manifest and caches come first, since the
    Adaptor and every cell that reads it wait on them; the rest fills the other cores meanwhile.
    """
    dataset = wildcards.get("dataset") or DEMO_ROOTS.get(wildcards.get("demo_root"))
    return int(dataset == PRETRAIN["dataset"])


def as_json(value):
    """A setting passed to the CLI (quoted by the shell line's :q); as a param, a change to it
    reruns the job."""
    return json.dumps(value, sort_keys=True)


def fraction_label(fraction):
    return str(float(fraction))


# The label fractions as the cells' paths and the CLI spell them.
FRACTIONS = [fraction_label(fraction) for fraction in EVALUATE["fractions"]]


def get_dataset_files(wildcards):
    """A demo dataset is the folder its rule renders; a real one, the label files (and report
    archive) its reader needs, so a dry run names a missing one and an edited one reruns prepare.
    A real dataset stays where it lies, outside any storage provider (`local`): with object
    storage its images are read in place, from a volume mounted on every node.
    """
    entry = DATASETS[wildcards.dataset]
    if entry["demo"]:
        return [entry["root"]]
    return [
        local(str(path))
        for path in label_files(entry["reader"], entry["root"], entry).values()
    ]


def dataset_settings(wildcards, input):
    """The reader's settings; a demo dataset's root is its rendered folder as the job sees it
    (with a storage provider, its local copy)."""
    entry = DATASETS[wildcards.dataset]
    root = {"root": input[0]} if entry["demo"] else {}
    return as_json({k: v for k, v in entry.items() if k != "demo"} | root)


def get_encoder_spec(wildcards):
    return as_json(ENCODERS[wildcards.modality][wildcards.encoder])


def get_embed_settings(wildcards):
    """What the cached values and their storage depend on (not worker counts: no rerun for those)."""
    return as_json(
        {
            "shard_rows": EMBED["shard_rows"],
            "chunk_rows": EMBED["chunk_rows"],
            "dtype": EMBED["dtype"],
            "compression": EMBED["compression"],
            "tokens": wildcards.dataset in EMBED["tokens"],
            "on_error": config["on_error"],
            "decode": EMBED["decode"],
        }
        # Named only when asked for, so that a cache without stage maps keeps its settings.
        | (
            {"stages": True, "stage_indices": EMBED["stage_indices"]}
            if wildcards.modality == "image" and wildcards.dataset in EMBED["stages"]
            else {}
        )
    )


def get_embed_parts(wildcards):
    return [
        PATHS["cache_part"].format(part=part, **dict(wildcards.items()))
        for part in range(EMBED["parts"])
    ]


def get_cache(dataset, modality, encoder, prefix):
    """A cache as the inputs of a rule: the Zarr group, and its rejects table, which the last
    embedding step writes (its presence means the cache is complete)."""
    names = {"dataset": dataset, "modality": modality, "encoder": encoder}
    return {
        prefix: PATHS["cache"].format(**names),
        f"{prefix}_rejects": PATHS["cache_rejects"].format(**names),
    }


def adaptor_dir(image_encoder, text_encoder, mode):
    return PATHS["adaptor"].format(
        image_encoder=image_encoder, text_encoder=text_encoder, mode=mode
    )


def get_pretrain_caches(wildcards):
    return get_cache(
        PRETRAIN["dataset"], "image", wildcards.image_encoder, "image"
    ) | get_cache(PRETRAIN["dataset"], "text", wildcards.text_encoder, "text")


def get_image_encoder(wildcards):
    """The encoder whose image cache a method reads: the random twin for `random`."""
    if wildcards.method == "random":
        return random_twin(wildcards.image_encoder)
    return wildcards.image_encoder


def get_features(wildcards):
    """The frozen features a head or decoder trains on (an encoder's cache, or the Adaptor's), and
    the rejects table of the image cache behind them: the samples its cells leave out.
    """
    encoder = get_image_encoder(wildcards)
    image_cache = get_cache(wildcards.dataset, "image", encoder, "features")
    if wildcards.method in ADAPTOR_MODES:
        image_cache["features"] = PATHS["adaptor_features"].format(
            mode=ADAPTOR_MODES[wildcards.method], **dict(wildcards.items())
        )
    return image_cache


def get_segmentation_inputs(wildcards):
    """A decoder's features, and the image cache under them, whose stage maps a U-Net reads."""
    image_cache = PATHS["cache"].format(
        dataset=wildcards.dataset,
        modality="image",
        encoder=get_image_encoder(wildcards),
    )
    return get_features(wildcards) | {"image": image_cache}


def get_text_encoder_argument(wildcards):
    """The text encoder an evaluated model depends on, or nothing for an encoder alone."""
    return "" if wildcards.text_encoder == "none" else wildcards.text_encoder


def get_adaptor(wildcards):
    """A trained Adaptor's files, for the mode an evaluation method reads."""
    directory = adaptor_dir(
        wildcards.image_encoder,
        wildcards.text_encoder,
        ADAPTOR_MODES.get(wildcards.get("method"), wildcards.get("mode")),
    )
    return {key: f"{directory}/{name}" for key, name in ADAPTOR_FILES.items()}


def method_encoders(methods=EVALUATE["methods"]):
    """(method, image_encoder, text_encoder) for every evaluated model. An encoder alone is
    evaluated on the configured encoders only: `frozen` on a random twin is `random` on its base.
    """
    pairs = list(product(PRETRAIN["image_encoders"], PRETRAIN["text_encoders"]))
    alone = [image for image in PRETRAIN["image_encoders"] if twin_base(image) is None]
    return [
        (method, image, text if method in ADAPTOR_MODES else "none")
        for method in methods
        for image, text in (
            pairs if method in ADAPTOR_MODES else [(image, "none") for image in alone]
        )
    ]


def run_path(dataset, task, method, image, text, fraction, seed):
    return PATHS["run"].format(
        dataset=dataset,
        task=task,
        method=method,
        image_encoder=image,
        text_encoder=text,
        fraction=fraction_label(fraction),
        seed=seed,
    )


def seed_cells(task):
    """One evaluation job's outputs: one seed's cells at every fraction, as wildcard patterns. A job
    per seed, not per cell, saves a process start per fraction; a new seed or encoder is new jobs.
    """
    return [
        run_path(
            "{dataset}",
            task,
            "{method}",
            "{image_encoder}",
            "{text_encoder}",
            fraction,
            "{seed}",
        )
        for fraction in EVALUATE["fractions"]
    ]


def subsets_path(dataset, task, seed="{seed}"):
    """One seed's label-fraction subsets with the val and test splits; zero-shot's test split alone."""
    if task == "zeroshot":
        return PATHS["zeroshot_split"].format(dataset=dataset)
    return PATHS["subsets"].format(dataset=dataset, task=task, seed=seed)


def all_runs(task, datasets):
    return [
        run_path(dataset, task, method, image, text, fraction, seed)
        for dataset in datasets
        for method, image, text in method_encoders()
        for fraction in EVALUATE["fractions"]
        for seed in EVALUATE["seeds"]
    ]


def all_zeroshot_runs():
    adaptor_methods = [m for m in EVALUATE["methods"] if m in ADAPTOR_MODES]
    return [
        PATHS["zeroshot_run"].format(
            dataset=dataset, method=method, image_encoder=image, text_encoder=text
        )
        for dataset in ZEROSHOT_PROMPTS
        for method, image, text in method_encoders(adaptor_methods)
    ]


def in_report(path, entry):
    """A file shown in Snakemake's HTML report (`snakemake --report`), with its caption."""
    return in_html_report(
        path,
        caption=f"../../report/{entry.caption}",
        category=entry.category,
        subcategory=entry.subcategory,
        labels={"name": entry.title},
    )


def figure_outputs():
    """Every figure the figures rule draws, SVG and PNG; the SVGs go into the HTML report."""
    entries = figure_entries(
        CLASSIFICATION["datasets"], SEGMENTATION["datasets"], list(ZEROSHOT_PROMPTS)
    )
    return [
        output
        for entry in entries
        for output in (
            in_report(f"{PATHS['figures']}/{entry.name}.svg", entry),
            f"{PATHS['figures']}/{entry.name}.png",
        )
    ]


def report_table_outputs():
    """The report rule's tables as HTML pages for the HTML report, named <table>_html."""
    return {
        f"{entry.name}_html": in_report(
            f"{PATHS['report_tables']}/{entry.name}.html", entry
        )
        for entry in table_entries()
    }


def is_demo_run():
    """Whether any dataset of the run is the demo's generated data (the report says so beside the
    paper's numbers)."""
    return any(entry.get("demo") for entry in DATASETS.values())


def all_adaptors():
    """(image encoder, text encoder, mode) of every Adaptor the config trains."""
    return list(
        product(
            PRETRAIN["image_encoders"], PRETRAIN["text_encoders"], PRETRAIN["modes"]
        )
    )


def all_pretrain_metrics():
    return [
        f"{adaptor_dir(image, text, mode)}/{ADAPTOR_FILES['metrics']}"
        for image, text, mode in all_adaptors()
    ]
