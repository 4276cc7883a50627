"""Each setting is stated once: config/schema.yaml holds the defaults the workflow runs with, and
the settings dataclasses (used by the commands and the library outside Snakemake) are held equal
to it here, as are the name lists written in more than one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from adaptor.cache.store import Layout
from adaptor.cli import parser
from adaptor.data.demo.writers import WRITERS
from adaptor.data.images import Preprocess
from adaptor.data.prepare import READERS
from adaptor.encoders.embed import ON_ERROR, EmbedSettings
from adaptor.encoders.registry import EncoderSpec
from adaptor.evaluate.probe import HeadSettings
from adaptor.evaluate.segmentation import DecoderSettings
from adaptor.model.adaptor import AdaptorConfig
from adaptor.train.pretrain import PretrainSettings

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())


def schema_node(path: str) -> dict[str, Any]:
    """The schema of a config key, ``*`` standing for any entry of a mapping."""
    node = SCHEMA
    for key in path.split("."):
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return node


def _defaults(cls: type) -> dict[str, Any]:
    found = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            found[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            found[field.name] = field.default_factory()
    return found


def _comparable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return list(value) if isinstance(value, tuple) else value


def schema_default(node: dict[str, Any]) -> Any:
    """A key's default; an object's empty default filled with its properties' defaults."""
    default = node["default"]
    if default == {} and "properties" in node:
        return {name: schema_default(sub) for name, sub in node["properties"].items() if "default" in sub}
    return default


# embed.tokens / embed.stages list the datasets that get token / stage caches; EmbedSettings.tokens /
# .stages say whether this one does.
SAME_NAME_OTHER_MEANING = {EmbedSettings: {"tokens", "stages"}}


@pytest.mark.parametrize(
    ("cls", "path", "shared"),
    [
        (
            EmbedSettings,
            "embed",
            {"num_workers", "shard_rows", "chunk_rows", "dtype", "compression", "stage_indices"},
        ),
        (Preprocess, "encoders.image.*.preprocess", {"resize", "crop", "normalize", "channels"}),
        (EncoderSpec, "encoders.image.*", {"weights", "revision", "model_kwargs", "batch_size"}),
        (
            EncoderSpec,
            "encoders.text.*",
            {"weights", "revision", "pooling", "max_length", "trust_remote_code"},
        ),
        (PretrainSettings, "pretrain", {"epochs", "batch_size", "lr", "warmup_fraction", "patience", "seed"}),
        (
            HeadSettings,
            "evaluate.classification.head",
            {"head", "lr", "weight_decay", "max_epochs", "patience"},
        ),
        (
            DecoderSettings,
            "evaluate.segmentation.decoder",
            {"lr", "batch_size", "channels", "focal_gamma", "kind", "unet_widths"},
        ),
    ],
)
def test_dataclass_defaults_equal_the_schemas(cls: type, path: str, shared: set[str]) -> None:
    """Every field that also has a schema default has the same one (``shared`` names some that
    must be among them, so that a renamed key cannot pass by matching nothing)."""
    properties = schema_node(path)["properties"].items()
    schema = {name: schema_default(node) for name, node in properties if "default" in node}
    defaults = _defaults(cls)
    both = (schema.keys() & defaults.keys()) - SAME_NAME_OTHER_MEANING.get(cls, set())
    assert shared <= both, f"{cls.__name__} and {path} no longer share {shared - both}"
    for name in both:
        same = _comparable(defaults[name]) == _comparable(schema[name])
        assert same, f"{cls.__name__}.{name} vs {path}.{name}"


def test_the_adaptor_architecture_has_one_source() -> None:
    """The schema states no architecture default: AdaptorConfig's are the paper's, and the clamp
    of the logit scale, which the recipe also names, agrees."""
    assert "default" not in schema_node("pretrain.architecture")
    assert not any("default" in node for node in schema_node("pretrain.architecture")["properties"].values())
    assert AdaptorConfig(1, 1).logit_scale_max == PretrainSettings().logit_scale_max


def test_the_cache_layout_defaults_are_the_embed_settings() -> None:
    layout = _defaults(Layout)
    for name, value in _defaults(EmbedSettings).items():
        if name in layout:
            assert layout[name] == value, name


def _choices(command: str, option: str) -> list[str]:
    subparsers = next(a for a in parser()._actions if a.choices and command in a.choices)
    action = next(a for a in subparsers.choices[command]._actions if option in a.option_strings)
    return list(action.choices)


def test_reader_names_agree() -> None:
    names = schema_node("datasets.*")["properties"]["reader"]["enum"]
    assert sorted(names) == sorted(READERS) == sorted(WRITERS) == sorted(_choices("demo", "--dataset"))


def test_on_error_values_agree() -> None:
    assert list(ON_ERROR) == SCHEMA["properties"]["on_error"]["enum"] == _choices("prepare", "--on-error")
    assert SCHEMA["properties"]["on_error"]["default"] == EmbedSettings().on_error
