import json
import re
import shlex
from itertools import product

from snakemake.utils import validate

validate(config, "../../config/schema.yaml")

DATASETS = config["datasets"]
IMAGE_ENCODERS = config["encoders"]["image"]
TEXT_ENCODERS = config["encoders"]["text"]
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
    for name, entry in IMAGE_ENCODERS.items():
        if entry["preprocess"]["crop"] > entry["preprocess"]["resize"]:
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
    method="adaptor|frozen",
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


def image_cache(dataset, image_encoder):
    return f"results/cache/{dataset}/image/{image_encoder}.zarr"


def text_cache(dataset, text_encoder):
    return f"results/cache/{dataset}/text/{text_encoder}.zarr"


def adaptor_dir(image_encoder, text_encoder):
    return f"results/adaptors/{image_encoder}/{text_encoder}"


def get_features(wildcards):
    """The frozen features a head is trained on: the encoder's, or the Adaptor image path's."""
    if wildcards.method == "frozen":
        return image_cache(wildcards.dataset, wildcards.image_encoder)
    return f"results/cache/{wildcards.dataset}/adaptor/{wildcards.image_encoder}/{wildcards.text_encoder}/pooled.zarr"


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
        f"{adaptor_dir(image, text)}/metrics.json"
        for image, text in product(
            PRETRAIN["image_encoders"], PRETRAIN["text_encoders"]
        )
    ]
