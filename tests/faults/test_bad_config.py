"""Config mistakes are refused before any job runs, naming the key and what to do. The schema's
checks here, through ``adaptor.config.load`` (the validation the Snakefile runs); the cross-references
in ``tests/test_config.py``; ``tests/workflow/test_dry_runs.py`` shows Snakemake reporting both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from adaptor import config as workflow_config
from adaptor.encoders.registry import EncoderSpec, load_encoder
from adaptor.errors import ConfigError

TINY = Path(__file__).parents[1] / "workflow" / "tiny.yaml"


def _refused(tmp_path: Path, change: Callable[[dict], None]) -> str:
    """The tiny config after ``change``, loaded as the workflow would; it must be refused. Returns why."""
    config = yaml.safe_load(TINY.read_text())
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as refused:
        workflow_config.load([path])
    return str(refused.value)


@pytest.mark.parametrize(("key", "values"), [("seeds", [0, 0]), ("fractions", [0.1, 1.0, 0.1])])
def test_a_repeated_seed_or_fraction_is_refused(tmp_path: Path, key: str, values: list) -> None:
    message = _refused(tmp_path, lambda config: config["evaluate"].update({key: values}))
    assert "has non-unique elements" in message and f"'{key}'" in message


@pytest.mark.parametrize("key", ["seeds", "fractions"])
def test_no_seeds_or_fractions_is_refused(tmp_path: Path, key: str) -> None:
    message = _refused(tmp_path, lambda config: config["evaluate"].update({key: []}))
    assert "should be non-empty" in message and f"'{key}'" in message


def test_an_unknown_timm_model_is_named_with_close_names() -> None:
    spec = EncoderSpec("lite", "image", "timm", "efficientnet_lite00", weights="random")
    named = r"encoders.image.lite.model: timm .* no model 'efficientnet_lite00'; close names: \['eff"
    with pytest.raises(ConfigError, match=named):
        load_encoder(spec)
