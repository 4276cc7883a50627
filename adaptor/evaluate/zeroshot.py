"""Zero-shot classification: no labels, only a positive and a negative prompt per class.

Both prompts go through the frozen text encoder and the Adaptor's text path; an image's score for
a class is the softmax over (positive, negative) of the scaled cosine similarities, i.e. the
probability that the positive prompt describes it better. Scored by AUROC on the test split, one
class at a time (one-vs-rest for a multi-class dataset).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache
from adaptor.data.manifest import ManifestInfo
from adaptor.encoders.embed import text_shards
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder
from adaptor.errors import CacheMismatch
from adaptor.evaluate.metrics import bootstrap, mean_defined, weighted_auroc
from adaptor.evaluate.run import result_rows
from adaptor.evaluate.subsets import split_ids
from adaptor.model.adaptor import Adaptor, load_adaptor


def same_text_encoder(encoder: LoadedEncoder, trained_with: dict[str, object], adaptor_dir: str) -> None:
    """Refuse to embed prompts with other text-encoder weights than the Adaptor was trained on (a hub
    model whose upstream weights changed since): the prompts would land in another space."""
    loaded = encoder.identity()
    changed = sorted(key for key in {*loaded, *trained_with} if loaded.get(key) != trained_with.get(key))
    if changed:
        raise CacheMismatch(
            f"{adaptor_dir}: trained on text embeddings of other encoder settings or weights than "
            f"{encoder.spec.name!r} now loads (differs in {changed}). Delete the text cache it was trained "
            f"on and rerun (the Adaptor trains again), or pin encoders.text.{encoder.spec.name}.revision "
            "to the commit it was trained with."
        )


def prompt_embeddings(model: Adaptor, encoder: LoadedEncoder, prompts: list[str]) -> np.ndarray:
    """Prompts -> [n, width] through the text encoder and the Adaptor text path, as in pre-training."""
    token_mode = model.config.mode == "tokens"
    ((_, arrays),) = text_shards(
        encoder, prompts, [(0, len(prompts))], [0], torch.device("cpu"), token_mode, np.dtype(np.float32)
    )
    problems = {prompt: reason for prompt, reason in zip(prompts, arrays["reasons"], strict=True) if reason}
    if problems:
        raise ValueError(f"unusable zero-shot prompts: {problems}")
    with torch.no_grad():
        if token_mode:
            text = model.encode_text(
                torch.from_numpy(arrays["tokens"]), torch.from_numpy(arrays["token_mask"])
            )
        else:
            text = model.encode_text(torch.from_numpy(arrays["embeddings"]))
    return text.numpy()


def scores(images: np.ndarray, prompts: np.ndarray, scale: float) -> np.ndarray:
    """[N, C] probability that each class's positive prompt beats its negative one.

    ``images`` [N, width] and ``prompts`` [C, 2, width] (positive, negative) are L2-normalised.
    """
    similarity = np.einsum("nd,cpd->ncp", images, prompts) * scale
    return np.asarray(1 / (1 + np.exp(similarity[..., 1] - similarity[..., 0])))


def _targets(info: ManifestInfo, frame: pl.DataFrame, classes: list[str]) -> np.ndarray:
    labels = np.asarray(frame["labels"].to_list(), dtype=np.float32)
    if info.task == "multiclass":
        labels = np.eye(len(info.classes), dtype=np.float32)[labels[:, 0].astype(int)]
    return labels[:, [info.classes.index(name) for name in classes]]


def zeroshot_cell(
    test: pl.DataFrame,
    info: ManifestInfo,
    features: Cache,
    model: Adaptor,
    encoder: LoadedEncoder,
    prompts: dict[str, list[str]],
    labels: dict[str, object],
) -> pl.DataFrame:
    """AUROC per prompted class (and their mean, ``auroc``) on the ``test`` manifest rows, with intervals."""
    started = time.perf_counter()
    unknown = sorted(set(prompts) - set(info.classes))
    if unknown:
        raise ValueError(
            f"{info.dataset}: zero-shot prompts for unknown classes {unknown}; classes {info.classes}"
        )
    if any(len(pair) != 2 for pair in prompts.values()):
        raise ValueError(f"{info.dataset}: each class needs [positive prompt, negative prompt]: {prompts}")
    classes = list(prompts)
    embedded = prompt_embeddings(model, encoder, [text for name in classes for text in prompts[name]])
    probability = scores(
        features.embeddings[features.rows(test["id"].to_list())],
        embedded.reshape(len(classes), 2, -1),
        float(model.scale().detach()),
    )
    targets = _targets(info, test, classes)

    def compute(weights: np.ndarray) -> dict[str, np.ndarray]:
        per_class = {
            f"auroc/{name}": weighted_auroc(targets[:, i], probability[:, i], weights)
            for i, name in enumerate(classes)
        }
        return {"auroc": mean_defined(np.stack(list(per_class.values()), axis=-1)), **per_class}

    columns = {
        "dataset": info.dataset,
        "task": "zeroshot",
        **labels,
        "n_test": len(test),
        "prompts": json.dumps(prompts, sort_keys=True),
    }
    return result_rows(columns, bootstrap(compute, len(test)), started)


def zeroshot_on_test_split(
    frame: pl.DataFrame,
    info: ManifestInfo,
    features: Cache,
    subsets: pl.DataFrame,
    adaptor_dir: str | Path,
    text_encoder: EncoderSpec,
    prompts: dict[str, list[str]],
    labels: dict[str, object],
) -> pl.DataFrame:
    """The zero-shot cell on the protocol's test split, with the text encoder the Adaptor was trained
    beside (refused if its weights changed since) and the protocol named in every row."""
    encoder = load_encoder(text_encoder)
    pretraining = json.loads((Path(adaptor_dir) / "metrics.json").read_text())
    same_text_encoder(encoder, pretraining["text_encoder_identity"], str(adaptor_dir))
    test = frame.filter(pl.col("id").is_in(split_ids(subsets, "test")))
    labels = labels | {"protocol": subsets["protocol"][0]}
    return zeroshot_cell(test, info, features, load_adaptor(adaptor_dir), encoder, prompts, labels)
