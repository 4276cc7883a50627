"""The workflow's configuration: the checks JSON Schema cannot express, and the same files merged
and validated outside Snakemake.

The Snakefile validates its config against ``config/schema.yaml`` and then calls :func:`check`. For
commands a user runs before the DAG (``check-data``), :func:`load` merges config files in order,
later values over earlier ones (as ``snakemake --configfile a.yaml b.yaml``), fills the schema's
defaults and runs the same checks, so the command sees exactly the settings the rules would.
Standard library, PyYAML and the package's light modules only: the Snakefile imports this.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from adaptor.data.releases import classes, settings_for
from adaptor.encoders.weights import remote_code_problem
from adaptor.errors import ConfigError, SettingsError

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
# Readers whose MGCA split the mgca protocols reproduce for training (adaptor.evaluate.splits keeps
# one function per reader; a test keeps the two equal). Zero-shot reads only the test split, which
# CheXpert's reader shares with MGCA.
MGCA_SPLIT_READERS = ("rsna", "covidx", "siim")
# Evaluation methods that read the Adaptor's image path, and the pre-training mode each one needs.
ADAPTOR_MODES = {"adaptor": "pooled", "adaptor_tokens": "tokens"}
# An image encoder's randomly initialised twin (the same architecture and preprocessing, seeded random
# weights) is named ``<name>@random`` and cached as an encoder of its own: the ``random`` method's
# floor, and an image setting an Adaptor can be pre-trained on (an encoder sweep's control row).
RANDOM_TWIN = "@random"


def random_twin(name: str) -> str:
    """The name of ``name``'s randomly initialised twin."""
    return f"{name}{RANDOM_TWIN}"


def twin_base(name: str) -> str | None:
    """The encoder a random twin is made from, or None for an encoder that is no twin."""
    return name.removesuffix(RANDOM_TWIN) if name.endswith(RANDOM_TWIN) else None


def image_encoders(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The configured image encoders with the random twins the config uses: every pre-training image
    encoder's when ``random`` is evaluated, and each twin ``pretrain.image_encoders`` names."""
    configured = config["encoders"]["image"]
    encoders = dict(configured)
    names = config["pretrain"]["image_encoders"]
    wanted = [random_twin(name) for name in names if "random" in config["evaluate"]["methods"]]
    for twin in [*wanted, *names]:
        base = twin_base(twin)
        if base in configured:
            encoders[twin] = configured[base] | {"weights": "random"}
    return encoders


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursively for mappings (Snakemake's rule for several config files)."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def load(paths: Sequence[str | Path], schema: str | Path = SCHEMA) -> dict[str, Any]:
    """The merged, validated config of ``paths``, with the schema's defaults filled in."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: cannot read the config ({error})") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config file holds a mapping of settings at its top level")
        config = merge(config, loaded)
    if not Path(schema).exists():
        raise ConfigError(f"{schema}: the config schema is missing (run from a checkout of the repository)")
    try:
        validate(config, str(schema), set_default=True)
    except WorkflowError as error:
        raise ConfigError(f"{', '.join(map(str, paths))}: {error}") from error
    check(config)
    return config


def check(config: dict[str, Any]) -> None:
    """Refuse a schema-valid config whose parts do not fit together, naming every key at fault."""
    found = problems(config)
    if found:
        raise ConfigError("invalid config:\n  " + "\n  ".join(found))


def problems(config: dict[str, Any]) -> list[str]:
    """The cross-references JSON Schema cannot express, one message per problem, each naming its key."""
    datasets, encoders = config["datasets"], config["encoders"]
    pretrain, evaluate, embed = config["pretrain"], config["evaluate"], config["embed"]
    classification, segmentation = evaluate["classification"], evaluate["segmentation"]
    prompts = evaluate["zeroshot"]["prompts"]
    found = []
    for name, entry in datasets.items():
        try:
            settings_for(entry["reader"], entry)
        except SettingsError as error:
            found.append(f"datasets.{name}: {error}")
    if pretrain["dataset"] not in datasets:
        found.append(f"pretrain.dataset: {pretrain['dataset']!r} is not in datasets")
    known = {"image": image_encoders(config), "text": encoders["text"]}
    for modality in ("image", "text"):
        for name in pretrain[f"{modality}_encoders"]:
            if name not in known[modality]:
                found.append(
                    f"pretrain.{modality}_encoders: {name!r} is not in encoders.{modality}"
                    + (f" (nor {RANDOM_TWIN} of one)" if modality == "image" else "")
                )
    evaluated = {*classification["datasets"], *segmentation["datasets"], *prompts}
    for name in sorted(evaluated - set(datasets)):
        found.append(f"evaluate: dataset {name!r} is not in datasets")
    if evaluate["protocol"] != "strict":
        for name in sorted({*classification["datasets"], *segmentation["datasets"]} & set(datasets)):
            if datasets[name]["reader"] not in MGCA_SPLIT_READERS:
                found.append(
                    f"evaluate.protocol: {evaluate['protocol']} reproduces MGCA's training splits for"
                    f" readers {MGCA_SPLIT_READERS}; dataset {name!r} (reader"
                    f" {datasets[name]['reader']}) has none"
                )
    for key in ("tokens", "stages"):
        for name in embed[key]:
            if name not in datasets:
                found.append(f"embed.{key}: {name!r} is not in datasets")
    if "tokens" in pretrain["modes"] and pretrain["dataset"] not in embed["tokens"]:
        found.append(f"pretrain.modes: tokens needs embed.tokens to list {pretrain['dataset']!r}")
    for method, mode in ADAPTOR_MODES.items():
        if method in evaluate["methods"] and mode not in pretrain["modes"]:
            found.append(
                f"evaluate.methods: {method} evaluates the {mode} Adaptor; add {mode} to pretrain.modes"
            )
    kind = segmentation["decoder"]["kind"]
    indices, widths = embed["stage_indices"], segmentation["decoder"]["unet_widths"]
    if segmentation["datasets"] and kind != "conv" and indices is not None and len(indices) != len(widths):
        found.append(
            f"evaluate.segmentation.decoder.unet_widths: {len(widths)} widths for the"
            f" {len(indices)} stages embed.stage_indices names; give one per stage"
        )
    for name in segmentation["datasets"]:
        if name in embed["tokens"] or (kind != "conv" and name in embed["stages"]) or kind == "unet":
            continue
        found.append(
            f"evaluate.segmentation.datasets: {name!r} needs patch tokens for the conv decoder (a ViT's):"
            " add it to embed.tokens"
            + ("" if kind == "conv" else "; for a CNN's U-Net, to embed.stages, or set decoder.kind: unet")
        )
    if "adaptor_tokens" in evaluate["methods"]:
        for name in sorted(evaluated - set(embed["tokens"])):
            found.append(f"evaluate.methods: adaptor_tokens reads patch tokens; add {name!r} to embed.tokens")
    for name, by_class in prompts.items():
        try:
            labelled = classes(datasets[name]["reader"], datasets[name])
        except (KeyError, SettingsError):  # reported above
            continue
        for unknown in sorted(set(by_class) - set(labelled)):
            found.append(
                f"evaluate.zeroshot.prompts.{name}: no class {unknown!r} in {name}; its classes"
                f" are {list(labelled)}"
            )
    if prompts and not set(ADAPTOR_MODES) & set(evaluate["methods"]):
        found.append("evaluate.zeroshot: zero-shot needs an Adaptor method (adaptor or adaptor_tokens)")
    for name, entry in encoders["text"].items():
        if problem := remote_code_problem(name, entry):
            found.append(problem)
    for name, entry in encoders["image"].items():
        if "preprocess" in entry and entry["preprocess"]["crop"] > entry["preprocess"]["resize"]:
            found.append(f"encoders.image.{name}.preprocess: crop exceeds resize")
    return found
