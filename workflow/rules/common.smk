import json
import re
import sys
from itertools import product

from snakemake.utils import validate

# The package's config checks and release table need only the standard library and PyYAML:
# importable from the checkout even where the package is not installed.
sys.path.insert(0, workflow.basedir)
from adaptor.config import ADAPTOR_MODES, check
from adaptor.data.releases import label_files

validate(config, "../../config/schema.yaml")
check(config)

DATASETS = config["datasets"]
IMAGE_ENCODERS = dict(config["encoders"]["image"])
TEXT_ENCODERS = config["encoders"]["text"]
ENCODERS = {"image": IMAGE_ENCODERS, "text": TEXT_ENCODERS}
THREADS = config["threads"]
EMBED = config["embed"]
PRETRAIN = config["pretrain"]
EVALUATE = config["evaluate"]
CLASSIFICATION = EVALUATE["classification"]
SEGMENTATION = EVALUATE["segmentation"]
ZEROSHOT_PROMPTS = EVALUATE["zeroshot"]["prompts"]


def random_encoder(name):
    """The floor: the same architecture and preprocessing, randomly initialised, as its own cache."""
    return f"{name}@random"


if "random" in EVALUATE["methods"]:
    for name in PRETRAIN["image_encoders"]:
        if name in IMAGE_ENCODERS:
            IMAGE_ENCODERS[random_encoder(name)] = IMAGE_ENCODERS[name] | {
                "weights": "random"
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
    """
    entry = DATASETS[wildcards.dataset]
    if entry["demo"]:
        return [entry["root"]]
    return [
        str(path)
        for path in label_files(entry["reader"], entry["root"], entry).values()
    ]


def dataset_settings(wildcards):
    return as_json(
        {k: v for k, v in DATASETS[wildcards.dataset].items() if k != "demo"}
    )


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
        }
    )


def get_embed_parts(wildcards):
    return [
        f"results/cache/{wildcards.dataset}/{wildcards.modality}/{wildcards.encoder}.parts/{part}.json"
        for part in range(EMBED["parts"])
    ]


def cache_path(dataset, modality, encoder):
    return f"results/cache/{dataset}/{modality}/{encoder}.zarr"


def cache_rejects(dataset, modality, encoder):
    """Written by embed_finalize: its presence means the cache is complete."""
    return f"results/cache/{dataset}/{modality}/{encoder}.rejects.parquet"


def get_cache(dataset, modality, encoder, prefix):
    """A cache as the inputs of a rule, the Zarr group and its rejects table (the sign it is complete)."""
    return {
        prefix: cache_path(dataset, modality, encoder),
        f"{prefix}_rejects": cache_rejects(dataset, modality, encoder),
    }


def adaptor_dir(image_encoder, text_encoder, mode):
    return f"results/adaptors/{image_encoder}/{text_encoder}/{mode}"


def get_pretrain_caches(wildcards):
    return get_cache(
        PRETRAIN["dataset"], "image", wildcards.image_encoder, "image"
    ) | get_cache(PRETRAIN["dataset"], "text", wildcards.text_encoder, "text")


def adaptor_features_path(dataset, image_encoder, text_encoder, mode):
    return f"results/cache/{dataset}/adaptor/{image_encoder}/{text_encoder}/{mode}.zarr"


def get_features(wildcards):
    """The frozen features a head or decoder trains on (an encoder's cache, or the Adaptor's), and
    the rejects table of the image cache behind them: the samples its cells leave out.
    """
    encoder = wildcards.image_encoder
    if wildcards.method == "random":
        encoder = random_encoder(encoder)
    image_cache = get_cache(wildcards.dataset, "image", encoder, "features")
    if wildcards.method in ADAPTOR_MODES:
        image_cache["features"] = adaptor_features_path(
            wildcards.dataset,
            wildcards.image_encoder,
            wildcards.text_encoder,
            ADAPTOR_MODES[wildcards.method],
        )
    return image_cache


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
    return {
        "weights": f"{directory}/weights.safetensors",
        "adaptor_config": f"{directory}/config.json",
        "metrics": f"{directory}/metrics.json",
    }


def masks_path(dataset, image_encoder):
    return f"results/masks/{dataset}/{image_encoder}.zarr"


def method_encoders(methods=EVALUATE["methods"]):
    """(method, image_encoder, text_encoder) for every evaluated model."""
    pairs = list(product(PRETRAIN["image_encoders"], PRETRAIN["text_encoders"]))
    return [
        (method, image, text if method in ADAPTOR_MODES else "none")
        for method in methods
        for image, text in (
            pairs
            if method in ADAPTOR_MODES
            else [(image, "none") for image in PRETRAIN["image_encoders"]]
        )
    ]


def run_path(dataset, task, method, image, text, fraction, seed):
    return f"results/runs/{dataset}/{task}/{method}/{image}/{text}/{fraction_label(fraction)}/{seed}.parquet"


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
        return f"results/subsets/{dataset}/zeroshot.parquet"
    return f"results/subsets/{dataset}/{task}/{seed}.parquet"


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
        f"results/runs/{dataset}/zeroshot/{method}/{image}/{text}.parquet"
        for dataset in ZEROSHOT_PROMPTS
        for method, image, text in method_encoders(adaptor_methods)
    ]


def all_pretrain_metrics():
    return [
        f"{adaptor_dir(image, text, mode)}/metrics.json"
        for image, text, mode in product(
            PRETRAIN["image_encoders"], PRETRAIN["text_encoders"], PRETRAIN["modes"]
        )
    ]
