"""Each cross-reference the schema cannot express, refused with a message naming its key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from adaptor import config as workflow_config
from adaptor.errors import ConfigError
from adaptor.evaluate.splits import CONVENTIONS

TINY = Path(__file__).parent / "workflow" / "tiny.yaml"
VALID = workflow_config.load([TINY])


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            config = config[parent]
        config[key] = value

    return change


CASES = {
    "a reader setting": (
        _set("datasets.rsna.split", [0.5, 0.5, 0.5]),
        "datasets.rsna: split [0.5, 0.5, 0.5]",
    ),
    "pretraining on an unknown dataset": (
        _set("pretrain.dataset", "padchest"),
        "pretrain.dataset: 'padchest' is not in datasets",
    ),
    "an unknown image encoder": (
        _set("pretrain.image_encoders", ["vit"]),
        "pretrain.image_encoders: 'vit' is not in encoders.image",
    ),
    "the random twin of an unknown image encoder": (
        _set("pretrain.image_encoders", ["efficientnet_lite0", "vit@random"]),
        "pretrain.image_encoders: 'vit@random' is not in encoders.image (nor @random of one)",
    ),
    "an unknown text encoder": (
        _set("pretrain.text_encoders", ["bert"]),
        "pretrain.text_encoders: 'bert' is not in encoders.text",
    ),
    "evaluating an unknown dataset": (
        _set("evaluate.classification.datasets", ["rsna", "padchest"]),
        "evaluate: dataset 'padchest' is not in datasets",
    ),
    "MGCA's protocol on a reader without MGCA's split": (
        lambda config: (
            config["evaluate"]["classification"].update(datasets=["rsna", "mimic"])
            or config["evaluate"].update(protocol="mgca")
        ),
        "evaluate.protocol: mgca reproduces MGCA's training splits for readers ('rsna', 'covidx', 'siim');"
        " dataset 'mimic' (reader mimic) has none",
    ),
    "tokens of an unknown dataset": (
        _set("embed.tokens", ["mimic", "rsna", "padchest"]),
        "embed.tokens: 'padchest' is not in datasets",
    ),
    "token pre-training without the pre-training set's tokens": (
        _set("embed.tokens", ["rsna"]),
        "pretrain.modes: tokens needs embed.tokens to list 'mimic'",
    ),
    "a method whose Adaptor is not trained": (
        _set("pretrain.modes", ["tokens"]),
        "evaluate.methods: adaptor evaluates the pooled Adaptor; add pooled to pretrain.modes",
    ),
    "segmentation without patch tokens nor stage maps": (
        lambda config: config["embed"].update(tokens=["mimic"], stages=[]),
        "evaluate.segmentation.datasets: 'rsna' needs patch tokens for the conv decoder (a ViT's): add it"
        " to embed.tokens; for a CNN's U-Net, to embed.stages, or set decoder.kind: unet",
    ),
    "the conv decoder without patch tokens": (
        lambda config: (
            config["embed"].update(tokens=["mimic"], stages=["rsna"])
            or config["evaluate"]["segmentation"]["decoder"].update(kind="conv")
        ),
        "evaluate.segmentation.datasets: 'rsna' needs patch tokens for the conv decoder (a ViT's): add it"
        " to embed.tokens",
    ),
    "U-Net widths that do not match the named stages": (
        _set("embed.stage_indices", [1, 2, 3, 4]),
        "evaluate.segmentation.decoder.unet_widths: 5 widths for the 4 stages embed.stage_indices names;"
        " give one per stage",
    ),
    "stage maps of an unknown dataset": (
        _set("embed.stages", ["rsna", "padchest"]),
        "embed.stages: 'padchest' is not in datasets",
    ),
    "the token Adaptor without patch tokens": (
        _set("embed.tokens", ["mimic"]),
        "evaluate.methods: adaptor_tokens reads patch tokens; add 'rsna' to embed.tokens",
    ),
    "a prompt for an unknown class": (
        _set("evaluate.zeroshot.prompts.rsna", {"Pnuemonia": ["pneumonia", "no pneumonia"]}),
        "evaluate.zeroshot.prompts.rsna: no class 'Pnuemonia' in rsna; its classes are ['Pneumonia']",
    ),
    "zero-shot without an Adaptor": (
        _set("evaluate.methods", ["frozen"]),
        "evaluate.zeroshot: zero-shot needs an Adaptor method (adaptor or adaptor_tokens)",
    ),
    "remote code at a moving revision": (
        lambda config: config["encoders"]["text"]["minilm"].update(trust_remote_code=True, revision="main"),
        "encoders.text.minilm: trust_remote_code runs code from",
    ),
    "a crop larger than the resize": (
        _set("encoders.image.efficientnet_lite0.preprocess.crop", 80),
        "encoders.image.efficientnet_lite0.preprocess: crop exceeds resize",
    ),
}


def test_the_tiny_config_fits_together() -> None:
    assert workflow_config.problems(VALID) == []


@pytest.mark.parametrize("case", CASES)
def test_a_config_whose_parts_do_not_fit_is_refused_naming_the_key(case: str) -> None:
    change, message = CASES[case]
    config = copy.deepcopy(VALID)
    change(config)
    assert any(message in problem for problem in workflow_config.problems(config))
    with pytest.raises(ConfigError, match="invalid config"):
        workflow_config.check(config)


def test_loading_runs_the_same_checks(tmp_path: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"]["dataset"] = "padchest"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"pretrain\.dataset: 'padchest' is not in datasets"):
        workflow_config.load([path])


def test_the_readers_with_mgca_splits_are_the_ones_the_splits_module_reproduces() -> None:
    assert set(workflow_config.MGCA_SPLIT_READERS) == set(CONVENTIONS)


def test_an_adaptor_can_be_pretrained_on_an_image_encoders_random_twin() -> None:
    """The sweep's control row: ``<name>@random`` is the configured encoder with random weights."""
    config = copy.deepcopy(VALID)
    config["pretrain"]["image_encoders"] = ["efficientnet_lite0", "efficientnet_lite0@random"]
    assert workflow_config.problems(config) == []
    encoders = workflow_config.image_encoders(config)
    twin = encoders["efficientnet_lite0@random"]
    assert twin == config["encoders"]["image"]["efficientnet_lite0"] | {"weights": "random"}
    assert "efficientnet_lite0@random@random" not in encoders  # a twin has no twin of its own
    assert workflow_config.twin_base("efficientnet_lite0@random") == "efficientnet_lite0"
    assert workflow_config.twin_base("efficientnet_lite0") is None


def test_the_random_method_adds_each_pretraining_encoders_twin() -> None:
    config = copy.deepcopy(VALID)
    config["evaluate"]["methods"] = ["adaptor", "random"]
    assert set(workflow_config.image_encoders(config)) == {"efficientnet_lite0", "efficientnet_lite0@random"}
    config["evaluate"]["methods"] = ["adaptor"]
    assert set(workflow_config.image_encoders(config)) == {"efficientnet_lite0"}
