"""Config mistakes are refused by a dry run, naming the key and what to do, before any job runs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from adaptor.encoders.registry import EncoderSpec, load_encoder
from adaptor.errors import ConfigError

TINY = Path(__file__).parents[1] / "workflow" / "tiny.yaml"
Snakemake = Callable[..., subprocess.CompletedProcess[str]]


def _dry_run(snakemake: Snakemake, tmp_path: Path, change: Callable[[dict], None]) -> str:
    """A dry run of the tiny config after ``change``; it must fail. Returns what it printed."""
    config = yaml.safe_load(TINY.read_text())
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, path, "-n")
    assert result.returncode != 0, "the dry run accepted the config"
    return result.stdout + result.stderr


@pytest.mark.parametrize(("key", "values"), [("seeds", [0, 0]), ("fractions", [0.1, 1.0, 0.1])])
def test_a_repeated_seed_or_fraction_is_refused(
    snakemake: Snakemake, tmp_path: Path, key: str, values: list
) -> None:
    output = _dry_run(snakemake, tmp_path, lambda config: config["evaluate"].update({key: values}))
    assert "has non-unique elements" in output and f"'{key}'" in output


@pytest.mark.parametrize("key", ["seeds", "fractions"])
def test_no_seeds_or_fractions_is_refused(snakemake: Snakemake, tmp_path: Path, key: str) -> None:
    output = _dry_run(snakemake, tmp_path, lambda config: config["evaluate"].update({key: []}))
    assert "should be non-empty" in output and f"'{key}'" in output


def test_a_split_that_does_not_sum_to_one_is_refused(snakemake: Snakemake, tmp_path: Path) -> None:
    output = _dry_run(snakemake, tmp_path, lambda config: config["datasets"]["rsna"].update(split=[0.5] * 3))
    assert "datasets.rsna: split [0.5, 0.5, 0.5]: give three train / val / test shares" in output


def test_a_zero_shot_prompt_for_an_unknown_class_is_refused(snakemake: Snakemake, tmp_path: Path) -> None:
    def typo(config: dict) -> None:
        config["evaluate"]["zeroshot"]["prompts"]["rsna"] = {"Pnuemonia": ["pneumonia", "no pneumonia"]}

    output = _dry_run(snakemake, tmp_path, typo)
    expected = "evaluate.zeroshot.prompts.rsna: no class 'Pnuemonia' in rsna; its classes are ['Pneumonia']"
    assert expected in output


def test_remote_code_without_a_pinned_commit_is_refused(snakemake: Snakemake, tmp_path: Path) -> None:
    def remote(config: dict) -> None:
        config["encoders"]["text"]["minilm"].update(trust_remote_code=True, revision="main")

    output = _dry_run(snakemake, tmp_path, remote)
    assert "encoders.text.minilm: trust_remote_code runs code from" in output
    assert "40-character commit hash" in output


def test_an_unknown_timm_model_is_named_with_close_names() -> None:
    spec = EncoderSpec("lite", "image", "timm", "efficientnet_lite00", weights="random")
    named = r"encoders.image.lite.model: timm .* no model 'efficientnet_lite00'; close names: \['eff"
    with pytest.raises(ConfigError, match=named):
        load_encoder(spec)
