import json
import re
import shlex
from itertools import product

from snakemake.utils import validate

validate(config, "../../config/schema.yaml")

DATASETS = config["datasets"]
IMAGE_ENCODERS = config["encoders"]["image"]
TEXT_ENCODERS = config["encoders"]["text"]
ENCODERS = {"image": IMAGE_ENCODERS, "text": TEXT_ENCODERS}
EMBED = config["embed"]
PRETRAIN = config["pretrain"]
EVALUATE = config["evaluate"]


def check_config():
    """Cross-references JSON Schema cannot express; each message names the key."""
    problems = []
    if PRETRAIN["dataset"] not in DATASETS:
        problems.append(f"pretrain.dataset: {PRETRAIN['dataset']!r} is not in datasets")
    for name in PRETRAIN["image_encoders"]:
        if name not in IMAGE_ENCODERS:
            problems.append(
                f"pretrain.image_encoders: {name!r} is not in encoders.image"
            )
    for name in PRETRAIN["text_encoders"]:
        if name not in TEXT_ENCODERS:
            problems.append(f"pretrain.text_encoders: {name!r} is not in encoders.text")
    for name in EVALUATE["datasets"]:
        if name not in DATASETS:
            problems.append(f"evaluate.datasets: {name!r} is not in datasets")
    for name in EMBED["tokens"]:
        if name not in DATASETS:
            problems.append(f"embed.tokens: {name!r} is not in datasets")
    if "tokens" in PRETRAIN["modes"] and PRETRAIN["dataset"] not in EMBED["tokens"]:
        problems.append(
            f"pretrain.modes: tokens needs embed.tokens to list {PRETRAIN['dataset']!r}"
        )
    if "adaptor" in EVALUATE["methods"] and "pooled" not in PRETRAIN["modes"]:
        problems.append(
            "evaluate.methods: adaptor evaluates the pooled Adaptor; add pooled to pretrain.modes"
        )
    for name, entry in IMAGE_ENCODERS.items():
        if (
            "preprocess" in entry
            and entry["preprocess"]["crop"] > entry["preprocess"]["resize"]
        ):
            problems.append(f"encoders.image.{name}.preprocess: crop exceeds resize")
    if problems:
        raise ValueError("invalid config:\n  " + "\n  ".join(problems))


check_config()

# Demo datasets are rendered into their configured root by the demo_data rule.
DEMO_ROOTS = {
    entry["root"]: name for name, entry in DATASETS.items() if entry.get("demo")
}


wildcard_constraints:
    dataset="|".join(DATASETS),
    image_encoder="|".join(IMAGE_ENCODERS),
    text_encoder="|".join([*TEXT_ENCODERS, "none"]),
    encoder="|".join(re.escape(name) for name in {*IMAGE_ENCODERS, *TEXT_ENCODERS}),
    modality="image|text",
    part="[0-9]+",
    method="adaptor|frozen",
    mode="pooled|tokens",
    fraction="[0-9.]+",
    seed="[0-9]+",
    demo_root="|".join(re.escape(root) for root in DEMO_ROOTS) or "$^",


def as_json(value):
    """A setting passed to the CLI; as a param, a change to it reruns the job."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def fraction_label(fraction):
    return str(float(fraction))


def get_demo_input(wildcards):
    """Demo datasets are rendered by a rule; real ones are read where the config points."""
    entry = DATASETS[wildcards.dataset]
    return [entry["root"]] if entry.get("demo") else []


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
    """A cache as rule inputs: the Zarr group and its rejects table (the sign it is complete)."""
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


def get_features(wildcards):
    """The frozen features a head is trained on: the encoder's, or the Adaptor image path's."""
    if wildcards.method == "frozen":
        return get_cache(
            wildcards.dataset, "image", wildcards.image_encoder, "features"
        )
    return {
        "features": f"results/cache/{wildcards.dataset}/adaptor/{wildcards.image_encoder}/{wildcards.text_encoder}/pooled.zarr"
    }


def get_embed_rejects(wildcards):
    """Samples any evaluated image encoder rejected are left out for every method alike."""
    return [
        cache_rejects(wildcards.dataset, "image", encoder)
        for encoder in PRETRAIN["image_encoders"]
    ]


def method_encoders():
    """(method, image_encoder, text_encoder) for every evaluated model."""
    pairs = list(product(PRETRAIN["image_encoders"], PRETRAIN["text_encoders"]))
    cells = []
    if "adaptor" in EVALUATE["methods"]:
        cells += [("adaptor", image, text) for image, text in pairs]
    if "frozen" in EVALUATE["methods"]:
        cells += [("frozen", image, "none") for image in PRETRAIN["image_encoders"]]
    return cells


def all_runs():
    return [
        f"results/runs/{dataset}/classification/{method}/{image}/{text}/{fraction_label(fraction)}/{seed}.parquet"
        for dataset in EVALUATE["datasets"]
        for method, image, text in method_encoders()
        for fraction in EVALUATE["fractions"]
        for seed in EVALUATE["seeds"]
    ]


def all_pretrain_metrics():
    return [
        f"{adaptor_dir(image, text, mode)}/metrics.json"
        for image, text, mode in product(
            PRETRAIN["image_encoders"], PRETRAIN["text_encoders"], PRETRAIN["modes"]
        )
    ]
