"""Command-line entry points, one per workflow stage. Rules call these; logic lives in the package.

Settings arrive as JSON strings from the rule's ``params`` so that Snakemake reruns a job exactly
when a setting it uses changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("adaptor")


def _threads(count: int) -> None:
    import torch

    torch.set_num_threads(max(1, count))


def cmd_demo(args: argparse.Namespace) -> None:
    from adaptor.data.demo.writers import WRITERS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    count = WRITERS[args.dataset](out, args.n, args.size, args.seed)
    log.info("wrote %d demo %s images under %s", count, args.dataset, out)


def cmd_prepare(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.data.prepare import prepare

    settings = json.loads(args.settings)
    frame, info, rejects = prepare(
        args.dataset, settings.pop("reader"), settings.pop("root"), settings, args.on_error
    )
    manifest.write(frame, info, args.out)
    rejects.write_parquet(args.rejects)
    counts = frame.group_by("split").len().sort("split").rows()
    log.info(
        "%s: %d samples %s, %d rejected (listed in %s)",
        args.dataset,
        len(frame),
        counts,
        len(rejects),
        args.rejects,
    )


def cmd_embed(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.encoders.embed import embed_manifest
    from adaptor.encoders.registry import EncoderSpec, load_encoder

    _threads(args.threads)
    frame, _ = manifest.read(args.manifest)
    spec = EncoderSpec.from_config(args.encoder, args.modality, json.loads(args.spec))
    encoder = load_encoder(spec)
    settings = json.loads(args.settings)
    embed_manifest(
        encoder,
        frame,
        args.out,
        num_workers=settings["num_workers"],
        shard_rows=settings["shard_rows"],
        dtype=settings["dtype"],
        extra_attrs={"parameters": encoder.parameter_count()},
    )


def cmd_pretrain(args: argparse.Namespace) -> None:
    from adaptor.cache.store import open_cache
    from adaptor.data import manifest
    from adaptor.train.pretrain import PretrainSettings, pretrain

    _threads(args.threads)
    frame, _ = manifest.read(args.manifest)
    metrics = pretrain(
        frame,
        open_cache(args.image_cache),
        open_cache(args.text_cache),
        PretrainSettings(**json.loads(args.settings)),
        args.out_dir,
    )
    log.info(
        "best validation loss %.4f at epoch %d of %d",
        metrics["best_val_loss"],
        metrics["best_epoch"],
        metrics["epochs_run"],
    )


def cmd_features(args: argparse.Namespace) -> None:
    from adaptor.cache import store
    from adaptor.encoders.weights import sha256
    from adaptor.train.pretrain import adaptor_features, load_adaptor

    _threads(args.threads)
    source = store.open_cache(args.image_cache)
    directory = Path(args.adaptor_dir)
    identity = {
        "image_cache_key": source.attrs["key"],
        "adaptor_weights_sha256": sha256(directory / "pooled.safetensors"),
        "path": "image",
        "mode": "pooled",
    }
    features = adaptor_features(load_adaptor(directory), source.embeddings)
    _, writer = store.create(args.out, source.ids.tolist(), features.shape[1], identity, dtype="float32")
    writer.append(features)
    writer.close()


def cmd_subsets(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.evaluate.run import draw_subsets

    frame, _ = manifest.read(args.manifest)
    draw_subsets(frame, [float(f) for f in args.fractions], [int(s) for s in args.seeds]).write_parquet(
        args.out
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.cache.store import open_cache
    from adaptor.data import manifest
    from adaptor.evaluate.run import evaluate_cell, head_settings

    _threads(args.threads)
    frame, info = manifest.read(args.manifest)
    rows = evaluate_cell(
        frame,
        info,
        open_cache(args.features),
        pl.read_parquet(args.subsets),
        float(args.fraction),
        int(args.seed),
        head_settings(json.loads(args.settings)),
        {
            "method": args.method,
            "image_encoder": args.image_encoder,
            "text_encoder": args.text_encoder or None,
        },
    )
    rows.write_parquet(args.out)
    log.info("%s", rows.select("metric", "value").rows())


def cmd_report(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.results import tables
    from adaptor.results.report import write_report

    out = Path(args.out_dir)
    classification = tables.classification(args.runs)
    wall = tables.wall_times(sorted(Path(args.benchmarks_dir).rglob("*.tsv")))
    stage_seconds = dict(wall.group_by("stage").agg(pl.col("seconds").sum()).rows())
    pretraining = tables.pretraining(args.pretrain_metrics, stage_seconds)
    tables.write_atomic(classification, out / "classification.parquet")
    tables.write_atomic(pretraining, out / "pretraining.parquet")
    tables.write_atomic(wall, out / "wall_time.parquet")
    write_report(classification, pretraining, wall, args.report)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="adaptor", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="render one demo dataset in its real on-disk layout")
    demo.add_argument("--dataset", required=True, choices=["mimic", "rsna", "covidx", "chexpert", "siim"])
    demo.add_argument("--out", required=True)
    demo.add_argument("--n", type=lambda v: None if v in ("all", "None") else int(v), required=True)
    demo.add_argument("--size", type=int, default=256)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=cmd_demo)

    prep = sub.add_parser("prepare", help="read a dataset into a manifest + rejects table")
    prep.add_argument("--dataset", required=True)
    prep.add_argument("--settings", required=True, help="JSON: the dataset's config entry")
    prep.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    prep.add_argument("--out", required=True)
    prep.add_argument("--rejects", required=True)
    prep.set_defaults(run=cmd_prepare)

    embed = sub.add_parser("embed", help="run a frozen encoder once over a manifest into a Zarr cache")
    embed.add_argument("--manifest", required=True)
    embed.add_argument("--encoder", required=True)
    embed.add_argument("--modality", required=True, choices=["image", "text"])
    embed.add_argument("--spec", required=True, help="JSON: the encoder's config entry")
    embed.add_argument("--settings", required=True, help="JSON: the embed section of the config")
    embed.add_argument("--out", required=True)
    embed.add_argument("--threads", type=int, default=1)
    embed.set_defaults(run=cmd_embed)

    train = sub.add_parser("pretrain", help="train the Adaptor on cached embeddings")
    train.add_argument("--manifest", required=True)
    train.add_argument("--image-cache", required=True)
    train.add_argument("--text-cache", required=True)
    train.add_argument("--settings", required=True, help="JSON: the pretrain recipe")
    train.add_argument("--out-dir", required=True)
    train.add_argument("--threads", type=int, default=1)
    train.set_defaults(run=cmd_pretrain)

    features = sub.add_parser("features", help="cache the frozen Adaptor image path over a dataset")
    features.add_argument("--image-cache", required=True)
    features.add_argument("--adaptor-dir", required=True)
    features.add_argument("--out", required=True)
    features.add_argument("--threads", type=int, default=1)
    features.set_defaults(run=cmd_features)

    subsets = sub.add_parser("subsets", help="draw the label-fraction subsets of the train split")
    subsets.add_argument("--manifest", required=True)
    subsets.add_argument("--fractions", nargs="+", required=True)
    subsets.add_argument("--seeds", nargs="+", required=True)
    subsets.add_argument("--out", required=True)
    subsets.set_defaults(run=cmd_subsets)

    evaluate = sub.add_parser(
        "evaluate", help="train and test one head: one (dataset, method, fraction, seed)"
    )
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--features", required=True)
    evaluate.add_argument("--subsets", required=True)
    evaluate.add_argument("--fraction", required=True)
    evaluate.add_argument("--seed", required=True)
    evaluate.add_argument("--method", required=True)
    evaluate.add_argument("--image-encoder", required=True)
    evaluate.add_argument("--text-encoder", default="")
    evaluate.add_argument("--settings", required=True, help="JSON: the head settings")
    evaluate.add_argument("--out", required=True)
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.set_defaults(run=cmd_evaluate)

    report = sub.add_parser("report", help="aggregate every run into Parquet tables and a report")
    report.add_argument("--runs", nargs="+", required=True)
    report.add_argument("--pretrain-metrics", nargs="+", required=True)
    report.add_argument("--benchmarks-dir", required=True, help="folder of Snakemake benchmark: files")
    report.add_argument("--out-dir", required=True)
    report.add_argument("--report", required=True)
    report.set_defaults(run=cmd_report)
    return main


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from adaptor.cache.store import CacheMismatch
    from adaptor.data.images import ImageError
    from adaptor.data.manifest import ManifestError
    from adaptor.encoders.weights import WeightsNotFound

    try:
        args.run(args)
    except (FileNotFoundError, ManifestError, CacheMismatch, ImageError, WeightsNotFound) as error:
        log.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
