"""The demo's encoder specs, read from config/demo.yaml so the benchmarks time what the demo runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from adaptor.encoders.registry import EncoderSpec

CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"


def demo_specs(batch_size: int | None = None) -> dict[str, EncoderSpec]:
    """{"image": spec, "text": spec} of the demo's first image and text encoders."""
    encoders = yaml.safe_load(CONFIG.read_text())["encoders"]
    specs = {}
    for modality in ("image", "text"):
        name, entry = next(iter(encoders[modality].items()))
        spec = EncoderSpec.from_config(name, modality, entry)
        specs[modality] = replace(spec, batch_size=batch_size) if batch_size else spec
    return specs
