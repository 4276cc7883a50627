"""The encoders the benchmarks time: the demo's, read from config/demo.yaml so they time what the demo
runs, and the paper's sizes with random weights (a forward costs the same whatever the weights)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import yaml
from transformers import BertConfig, BertModel

from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, _TextPooler, load_encoder

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


def paper_size_encoders(batch_size: int = 32) -> tuple[LoadedEncoder, LoadedEncoder]:
    """DINOv2 ViT-B/14 and BERT-base, random weights (BERT-base shares MiniLM's uncased vocabulary)."""
    image = EncoderSpec(
        "dinov2_b_random",
        "image",
        "timm",
        "vit_base_patch14_dinov2",
        weights="random",
        model_kwargs={"dynamic_img_size": True},
        preprocess={"resize": 256, "crop": 224, "normalize": "minus_one_one"},
        batch_size=batch_size,
    )
    minilm = load_encoder(demo_specs()["text"])
    torch.manual_seed(0)
    bert = _TextPooler(BertModel(BertConfig()), "pooler_output").eval().requires_grad_(False)
    spec = EncoderSpec(
        "bert_base_random", "text", "transformers", "bert-base-uncased", batch_size=batch_size, max_length=112
    )
    text = LoadedEncoder(spec, bert, 768, "random", tokenizer=minilm.tokenizer, token_shape=(112, 768))
    return load_encoder(image), text
