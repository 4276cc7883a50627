"""One classification, one segmentation and one zero-shot cell end to end, on tiny caches, via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from adaptor import cli
from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.data import manifest
from adaptor.data.manifest import ManifestInfo, Rejects
from adaptor.encoders.embed import EmbedSettings, embed_manifest
from adaptor.encoders.registry import EncoderSpec, load_encoder
from adaptor.evaluate.zeroshot import prompt_embeddings, scores, zeroshot_cell
from adaptor.model.adaptor import WEIGHTS, Adaptor, AdaptorConfig

GRID, CELL = 4, 16  # a 4 x 4 token grid over 64 x 64 images
IMAGE_SPEC = {"kind": "timm", "model": "toy", "preprocess": {"resize": 64, "crop": 64}}
SPLITS = ["train"] * 40 + ["val"] * 12 + ["test"] * 12


def _manifest(tmp_path: Path, task: str, classes: tuple[str, ...], labels: list, **columns) -> Path:
    ids = [f"s{i:02d}" for i in range(len(labels))]
    frame = manifest.build(
        [
            {
                "id": sample,
                "patient": sample,
                "path": str(tmp_path / f"{sample}.png"),
                "labels": label,
                "split": split,
            }
            | {name: values[i] for name, values in columns.items()}
            for i, (sample, label, split) in enumerate(zip(ids, labels, SPLITS, strict=True))
        ],
        ManifestInfo("toy", task, classes),
    )
    manifest.write(frame, ManifestInfo("toy", task, classes), tmp_path / "manifest.parquet")
    Rejects("toy").frame().write_parquet(tmp_path / "rejects.parquet")
    return tmp_path / "manifest.parquet"


def _cell_arguments(tmp_path: Path, features: Path, method: str = "frozen") -> list[str]:
    return [
        *("--manifest", str(tmp_path / "manifest.parquet"), "--features", str(features)),
        *("--exclude", str(tmp_path / "rejects.parquet"), "--method", method, "--image-encoder", "toy"),
    ]


def _subsets(tmp_path: Path) -> list[str]:
    cli.main(
        [
            *(
                "subsets",
                "--manifest",
                str(tmp_path / "manifest.parquet"),
                "--out",
                str(tmp_path / "subsets.parquet"),
            ),
            *("--fractions", "0.5", "1.0", "--seeds", "0"),
            *("--prepare-rejects", str(tmp_path / "rejects.parquet")),
        ]
    )
    return ["--subsets", str(tmp_path / "subsets.parquet"), "--seed", "0"]


def _features(tmp_path: Path, values: np.ndarray, identity: dict, tokens: np.ndarray | None = None) -> Path:
    """A finished cache over the manifest's ids (s00, s01, ...)."""
    ids = [f"s{i:02d}" for i in range(len(values))]
    token_shape = tokens.shape[1:] if tokens is not None else None
    layout = Layout(dim=values.shape[1], dtype="float32", token_shape=token_shape)
    write_all(tmp_path / "features.zarr", ids, values.astype(np.float32), identity, layout, tokens)
    return tmp_path / "features.zarr"


def _text_spec(model_directory: Path) -> dict[str, object]:
    return {
        "kind": "transformers",
        "model": "tiny",
        "weights": str(model_directory),
        "pooling": "cls",
        "max_length": 16,
    }


def test_a_classification_cell_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = [[float(i % 2)] for i in range(len(SPLITS))]
    _manifest(tmp_path, "binary", ("Finding",), labels)
    signal = np.asarray(labels, dtype=np.float32) * 2 - 1
    features = _features(
        tmp_path,
        np.concatenate([signal, rng.normal(size=(len(labels), 7))], axis=1),
        {"weights_sha256": "toy"},
    )
    settings = {"head": "linear", "lr": 0.05, "max_epochs": 30, "patience": 30, "batch_size": 8}
    half, out = tmp_path / "half.parquet", tmp_path / "cell.parquet"
    cli.main(
        [
            "evaluate",
            *_cell_arguments(tmp_path, features),
            *_subsets(tmp_path),
            *("--fractions", "0.5", "1.0", "--settings", json.dumps(settings), "--out", str(half), str(out)),
        ]
    )
    assert pl.read_parquet(half)["n_train"][0] == 20  # one job, one seed, every fraction
    rejects = Rejects("toy")
    for sample in ("s00", "s01", "s63"):  # two train samples and one test sample the cache rejected
        rejects.add(f"{sample}.png", None, sample, "cannot decode image")
    rejects.frame().write_parquet(tmp_path / "cache.rejects.parquet")
    arguments = _cell_arguments(tmp_path, features)
    arguments[arguments.index("--exclude") + 1] = str(tmp_path / "cache.rejects.parquet")
    cli.main(
        [
            "evaluate",
            *arguments,
            *_subsets(tmp_path),
            *("--fractions", "1.0", "--settings", json.dumps(settings), "--out", str(half)),
        ]
    )
    assert pl.read_parquet(half).select("n_train", "n_test").row(0) == (38, 11)
    rows = pl.read_parquet(out)
    assert rows["metric"].to_list() == ["auroc"]
    assert rows["value"][0] == 1.0 and rows["ci_low"][0] <= 1.0 <= rows["ci_high"][0]
    assert rows["n_train"][0] == 40 and rows["n_test"][0] == 12
    assert rows["image_weights_sha256"][0] == "toy" and rows["text_encoder"][0] is None
    assert len(rows["config_sha256"][0]) == 16 and len(rows["subset_sha256"][0]) == 16
    assert rows["protocol"][0] == "strict"
    assert rows["wall_seconds"][0] > 0


def _lesions(tmp_path: Path, squares: bool) -> list[int | None]:
    """A manifest of 64 x 64 images, two thirds with a lesion box in one of 16 grid cells (drawn
    as a bright square when ``squares``), and their masks."""
    rng = np.random.default_rng(0)
    cells = [int(rng.integers(0, GRID * GRID)) if i % 3 else None for i in range(len(SPLITS))]
    boxes = [
        [] if c is None else [[float(c % GRID * CELL), float(c // GRID * CELL), CELL, CELL]] for c in cells
    ]
    for i, c in enumerate(cells):
        pixels = np.zeros((64, 64), dtype=np.uint8)
        if squares and c is not None:
            pixels[c // GRID * CELL : (c // GRID + 1) * CELL, c % GRID * CELL : (c % GRID + 1) * CELL] = 255
        Image.fromarray(pixels).save(tmp_path / f"s{i:02d}.png")
    _manifest(tmp_path, "segmentation", ("Lesion",), [[float(c is not None)] for c in cells], boxes=boxes)
    cli.main(
        [
            *("masks", "--manifest", str(tmp_path / "manifest.parquet")),
            *("--image-spec", json.dumps(IMAGE_SPEC), "--out", str(tmp_path / "masks.zarr")),
        ]
    )
    return cells


def _segment(tmp_path: Path, features: Path, encoder: str, spec: dict, settings: dict) -> pl.DataFrame:
    out = tmp_path / "cell.parquet"
    cli.main(
        [
            "segment",
            *_cell_arguments(tmp_path, features),
            *_subsets(tmp_path),
            *("--image-cache", str(features), "--image-cache-encoder", encoder),
            *("--masks", str(tmp_path / "masks.zarr"), "--image-spec", json.dumps(spec)),
            *("--fractions", "1.0", "--settings", json.dumps(settings), "--out", str(out)),
        ]
    )
    return pl.read_parquet(out)


def _dice(rows: pl.DataFrame, cells: list[int | None]) -> dict[str, float]:
    """The three Dice figures, checked for what holds of any result; the empty predictor's exactly."""
    values = dict(zip(rows["metric"], rows["value"], strict=True))
    assert set(values) == {"dice_mgca", "dice_positive", "dice_empty_predictor"}
    test_cells = cells[-12:]
    assert values["dice_empty_predictor"] == pytest.approx(sum(c is None for c in test_cells) / 12)
    assert rows["n_test_positive"][0] == sum(c is not None for c in test_cells)
    assert (rows["ci_low"] <= rows["value"]).all() and (rows["value"] <= rows["ci_high"]).all()
    return values


def test_a_segmentation_cell_end_to_end(tmp_path: Path) -> None:
    """Tokens say which grid cell holds the lesion; the decoder must learn to draw it there."""
    rng = np.random.default_rng(1)
    cells = _lesions(tmp_path, squares=False)
    tokens = rng.normal(scale=0.1, size=(len(cells), GRID * GRID, 8)).astype(np.float32)
    for i, c in enumerate(cells):
        if c is not None:
            tokens[i, c, 0] += 3.0
    identity = EncoderSpec.from_config("toy", "image", IMAGE_SPEC).identity() | {"weights_sha256": "toy"}
    features = _features(tmp_path, tokens.mean(1), identity, tokens)
    settings = {"batch_size": 4, "max_epochs": 15, "patience": 15, "channels": [32, 32, 16, 16, 8]}
    rows = _segment(tmp_path, features, "toy", IMAGE_SPEC, settings | {"kind": "conv"})
    values = _dice(rows, cells)
    assert values["dice_positive"] > 0.6, values
    assert values["dice_mgca"] > values["dice_empty_predictor"] and rows["beats_empty_predictor"].all()
    assert rows["decoder"].unique().to_list() == ["conv"]


def test_a_unet_cell_end_to_end_on_cached_or_computed_stage_maps(tmp_path: Path) -> None:
    """A CNN's stage maps see the bright square; the U-Net must learn to draw it, from the cache
    or from maps computed in the job alike."""
    cells = _lesions(tmp_path, squares=True)
    spec = IMAGE_SPEC | {"model": "resnet10t", "weights": "random"}
    encoder = load_encoder(EncoderSpec.from_config("cnn", "image", spec))
    frame, _ = manifest.read(tmp_path / "manifest.parquet")
    settings = {"batch_size": 4, "max_epochs": 10, "patience": 10, "unet_widths": [16, 16, 8, 8, 8]}
    results = {}
    for stages in (True, False):
        cache = tmp_path / f"stages_{stages}.zarr"
        embed_manifest(encoder, frame, cache, EmbedSettings(num_workers=0, shard_rows=32, stages=stages))
        rows = _segment(tmp_path, cache, "cnn", spec, settings)
        assert rows["decoder"].unique().to_list() == ["unet"] and rows["decoder_parameters"][0] > 0
        results[stages] = _dice(rows, cells)
    for values in results.values():
        assert values["dice_positive"] > 0.6, results
        assert values["dice_mgca"] > values["dice_empty_predictor"]
    assert results[True] == pytest.approx(results[False], abs=0.02)


def test_segmentation_on_noise_is_flagged_when_it_does_not_beat_the_empty_predictor() -> None:
    from adaptor.evaluate.metrics import dice_scores

    masks = np.zeros((4, 8, 8))
    masks[0, :4, :4] = 1
    everywhere = dice_scores(np.ones((4, 8, 8)), masks)
    assert everywhere["dice_mgca"] < everywhere["dice_empty_predictor"] == 0.75


def test_zeroshot_scores_prefer_the_closer_prompt() -> None:
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    prompts = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # one class: positive = x axis, negative = y axis
    probability = scores(images, prompts, scale=10.0)
    assert probability.shape == (2, 1)
    assert probability[0, 0] == pytest.approx(1 / (1 + np.exp(-10))) and probability[1, 0] < 0.5


@pytest.mark.parametrize("mode", ["pooled", "tokens"])
def test_a_zeroshot_cell_end_to_end(tmp_path: Path, tiny_bert: Path, mode: str) -> None:
    """Images embedded exactly where a class's prompts land must score AUROC 1."""
    spec = _text_spec(tiny_bert)
    encoder = load_encoder(EncoderSpec.from_config("tiny", "text", spec))
    torch.manual_seed(0)
    model = Adaptor(AdaptorConfig(image_dim=8, text_dim=32, mode=mode)).eval()
    prompts = {"Effusion": ["effusion", "no effusion"], "Cardiomegaly": ["heart", "normal heart"]}
    embedded = prompt_embeddings(model, encoder, [text for pair in prompts.values() for text in pair])
    assert embedded.shape == (4, 768)
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1, rtol=1e-5)
    # class 0 (Effusion) positives sit on its positive prompt, everything else on its negative prompt
    labels = [[float(i % 2), 0.0] for i in range(len(SPLITS))]
    labels[-1][1] = 1.0  # one Cardiomegaly positive, so its AUROC is defined
    _manifest(tmp_path, "multilabel", ("Effusion", "Cardiomegaly"), labels)
    images = np.stack([embedded[0] if label[0] else embedded[1] for label in labels])
    features = open_cache(_features(tmp_path, images, {"adaptor_weights_sha256": "x"}))
    rows = zeroshot_cell(
        manifest.read(tmp_path / "manifest.parquet")[0].filter(pl.col("split") == "test"),
        ManifestInfo("toy", "multilabel", ("Effusion", "Cardiomegaly")),
        features,
        model,
        encoder,
        prompts,
        {"method": "adaptor"},
    )
    values = dict(zip(rows["metric"], rows["value"], strict=True))
    assert values["auroc/Effusion"] == 1.0
    assert set(values) == {"auroc", "auroc/Effusion", "auroc/Cardiomegaly"}
    assert rows["n_test"][0] == 12 and json.loads(rows["prompts"][0]) == prompts
    with pytest.raises(ValueError, match="unknown classes"):
        zeroshot_cell(
            manifest.read(tmp_path / "manifest.parquet")[0].filter(pl.col("split") == "test"),
            ManifestInfo("toy", "multilabel", ("Effusion", "Cardiomegaly")),
            features,
            model,
            encoder,
            {"Pneumonia": ["a", "b"]},
            {},
        )


def test_the_zeroshot_command_reads_a_trained_adaptor(tmp_path: Path, tiny_bert: Path) -> None:
    torch.manual_seed(0)
    config = AdaptorConfig(image_dim=8, text_dim=32)
    model = Adaptor(config)
    (tmp_path / "adaptor").mkdir()
    save_file(model.state_dict(), tmp_path / "adaptor" / WEIGHTS)
    (tmp_path / "adaptor" / "config.json").write_text(json.dumps(config.to_dict()))
    labels = [[float(i % 3)] for i in range(len(SPLITS))]
    _manifest(tmp_path, "multiclass", ("normal", "pneumonia", "COVID-19"), labels)
    images = np.random.default_rng(0).normal(size=(len(labels), 768))
    features = _features(tmp_path, images, {"adaptor_weights_sha256": "x"})
    spec = _text_spec(tiny_bert)
    trained_with = load_encoder(EncoderSpec.from_config("tiny", "text", spec)).identity()
    (tmp_path / "adaptor" / "metrics.json").write_text(json.dumps({"text_encoder_identity": trained_with}))
    out = tmp_path / "zeroshot.parquet"
    cli.main(
        [
            "zeroshot",
            *_cell_arguments(tmp_path, features, "adaptor"),
            *(
                "--text-encoder",
                "tiny",
                "--text-spec",
                json.dumps(spec),
                "--adaptor-dir",
                str(tmp_path / "adaptor"),
            ),
            *_subsets(tmp_path)[:2],
            *("--settings", json.dumps({"normal": ["normal", "effusion"], "COVID-19": ["lung", "no lung"]})),
            *("--out", str(out)),
        ]
    )
    rows = pl.read_parquet(out)
    assert set(rows["metric"]) == {"auroc", "auroc/normal", "auroc/COVID-19"}
    assert rows["value"].is_between(0, 1).all() and rows["adaptor_weights_sha256"][0] == "x"
    assert rows["n_test"][0] == SPLITS.count("test")
