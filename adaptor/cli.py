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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

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


def _embed_inputs(args: argparse.Namespace):
    """The manifest, loaded encoder and settings every embed step starts from."""
    from adaptor.data import manifest
    from adaptor.encoders.embed import EmbedSettings
    from adaptor.encoders.registry import EncoderSpec, load_encoder

    _threads(args.threads)
    frame, info = manifest.read(args.manifest)
    encoder = load_encoder(EncoderSpec.from_config(args.encoder, args.modality, json.loads(args.spec)))
    return frame, info, encoder, EmbedSettings(**json.loads(args.settings) | {"num_workers": args.workers})


def cmd_embed(args: argparse.Namespace) -> None:
    from adaptor.encoders.embed import embed_manifest

    frame, info, encoder, settings = _embed_inputs(args)
    resume = not args.restart
    rejects = embed_manifest(encoder, frame, args.out, settings, dataset=info.dataset, resume=resume)
    rejects.write_parquet(args.rejects)


def cmd_embed_init(args: argparse.Namespace) -> None:
    from adaptor.encoders.embed import init_cache

    frame, _, encoder, settings = _embed_inputs(args)
    init_cache(encoder, frame, args.out, settings)
    log.info("created %s for %d samples (%s, %d-d)", args.out, len(frame), encoder.spec.name, encoder.dim)


def cmd_embed_part(args: argparse.Namespace) -> None:
    from adaptor.encoders.embed import embed_part

    frame, _, encoder, settings = _embed_inputs(args)
    report = embed_part(encoder, frame, args.cache, settings, part=args.part, parts=args.parts)
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")


def cmd_embed_finalize(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.encoders.embed import finalize_cache

    frame, info = manifest.read(args.manifest)
    rejects = finalize_cache(args.cache, frame, info.dataset, args.modality)
    rejects.write_parquet(args.rejects)
    log.info("%s complete; %d samples rejected (listed in %s)", args.cache, len(rejects), args.rejects)


def _expected(encoder: str, modality: str, spec: str, ids: list[str] | None = None) -> dict[str, object]:
    """The identity a cache must have for this encoder entry (and manifest): stale caches are refused."""
    from adaptor.cache.store import ids_sha256
    from adaptor.encoders.registry import EncoderSpec

    identity = EncoderSpec.from_config(encoder, modality, json.loads(spec)).identity()
    return identity | ({"manifest_ids_sha256": ids_sha256(ids)} if ids is not None else {})


def pretrain_job(args: argparse.Namespace) -> None:
    """One pre-training process (one per GPU under DDP; the ranks agree, rank 0 writes)."""
    from adaptor.cache.store import open_cache
    from adaptor.data import manifest
    from adaptor.train.pretrain import PretrainSettings, pretrain

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _threads(args.threads)
    frame, _ = manifest.read(args.manifest)
    ids = frame["id"].to_list()
    metrics = pretrain(
        frame,
        open_cache(args.image_cache, _expected(args.image_encoder, "image", args.image_spec, ids)),
        open_cache(args.text_cache, _expected(args.text_encoder, "text", args.text_spec, ids)),
        PretrainSettings(**json.loads(args.settings)),
        args.out_dir,
    )
    if metrics:
        log.info("best validation loss %.4f at epoch %d", metrics["best_val_loss"], metrics["best_epoch"])


def cmd_pretrain(args: argparse.Namespace) -> None:
    import torch

    from adaptor.train.distributed import launch

    launch(pretrain_job, (args,), world=max(1, torch.cuda.device_count()))


def cmd_features(args: argparse.Namespace) -> None:
    from adaptor.cache import store
    from adaptor.encoders.weights import sha256
    from adaptor.train.pretrain import WEIGHTS, adaptor_features, load_adaptor

    _threads(args.threads)
    source = store.open_cache(args.image_cache, _expected(args.image_encoder, "image", args.image_spec))
    directory = Path(args.adaptor_dir)
    identity = {
        "image_cache_key": source.attrs["key"],
        "adaptor_weights_sha256": sha256(directory / WEIGHTS),
        "path": "image",
        "mode": "pooled",
    }
    features = adaptor_features(load_adaptor(directory), source.embeddings)
    layout = store.Layout(dim=features.shape[1], dtype="float32")
    store.write_all(args.out, source.ids.tolist(), features, identity, layout)


def _without_rejects(frame: pl.DataFrame, rejects: list[str]) -> pl.DataFrame:
    """The manifest minus samples rejected at embedding, so every method sees the same id set."""
    import polars as pl

    rejected = pl.concat([pl.read_parquet(path, columns=["sample_id"]) for path in rejects])
    kept = frame.filter(~pl.col("id").is_in(rejected["sample_id"].implode()))
    if len(kept) < len(frame):
        log.info("left out %d samples rejected at embedding", len(frame) - len(kept))
    return kept


def cmd_subsets(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.evaluate.run import draw_subsets

    frame, _ = manifest.read(args.manifest)
    kept = _without_rejects(frame, args.exclude)
    fractions, seeds = [float(f) for f in args.fractions], [int(s) for s in args.seeds]
    draw_subsets(kept, fractions, seeds, args.protocol).write_parquet(args.out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.cache.store import open_cache
    from adaptor.data import manifest
    from adaptor.evaluate.run import evaluate_cell, head_settings

    _threads(args.threads)
    frame, info = manifest.read(args.manifest)
    rows = evaluate_cell(
        _without_rejects(frame, args.exclude),
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
    retrieval = tables.retrieval(args.pretrain_metrics)
    tables.write_atomic(retrieval, out / "retrieval.parquet")
    tables.write_atomic(wall, out / "wall_time.parquet")
    write_report(classification, pretraining, retrieval, wall, args.report)


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

    def encoder_arguments(command: argparse.ArgumentParser) -> None:
        command.add_argument("--manifest", required=True)
        command.add_argument("--encoder", required=True)
        command.add_argument("--modality", required=True, choices=["image", "text"])
        command.add_argument("--spec", required=True, help="JSON: the encoder's config entry")
        command.add_argument("--settings", required=True, help="JSON: embed settings for this dataset")
        command.add_argument("--threads", type=int, default=1)
        command.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding images")

    embed = sub.add_parser("embed", help="embed a manifest into a cache in one process (resumes)")
    encoder_arguments(embed)
    embed.add_argument("--out", required=True)
    embed.add_argument("--rejects", required=True, help="Parquet of samples rejected at embedding")
    embed.add_argument("--restart", action="store_true", help="start over instead of resuming")
    embed.set_defaults(run=cmd_embed)

    init = sub.add_parser("embed-init", help="create the empty cache that embed-part jobs fill")
    encoder_arguments(init)
    init.add_argument("--out", required=True)
    init.set_defaults(run=cmd_embed_init)

    part = sub.add_parser("embed-part", help="embed one part's unfinished shards into a created cache")
    encoder_arguments(part)
    part.add_argument("--cache", required=True)
    part.add_argument("--part", type=int, required=True, help="0-based")
    part.add_argument("--parts", type=int, required=True)
    part.add_argument("--report", required=True, help="JSON written when the part is done")
    part.set_defaults(run=cmd_embed_part)

    final = sub.add_parser("embed-finalize", help="check every shard is written; write the rejects table")
    final.add_argument("--manifest", required=True)
    final.add_argument("--modality", required=True, choices=["image", "text"])
    final.add_argument("--cache", required=True)
    final.add_argument("--rejects", required=True)
    final.set_defaults(run=cmd_embed_finalize)

    train = sub.add_parser("pretrain", help="train the Adaptor on cached embeddings")
    train.add_argument("--manifest", required=True)
    train.add_argument("--image-cache", required=True)
    train.add_argument("--text-cache", required=True)
    train.add_argument("--image-encoder", required=True)
    train.add_argument("--image-spec", required=True, help="JSON: the image encoder's config entry")
    train.add_argument("--text-encoder", required=True)
    train.add_argument("--text-spec", required=True, help="JSON: the text encoder's config entry")
    train.add_argument("--settings", required=True, help="JSON: the pretrain recipe")
    train.add_argument("--out-dir", required=True)
    train.add_argument("--threads", type=int, default=1)
    train.set_defaults(run=cmd_pretrain)

    features = sub.add_parser("features", help="cache the frozen Adaptor image path over a dataset")
    features.add_argument("--image-cache", required=True)
    features.add_argument("--image-encoder", required=True)
    features.add_argument("--image-spec", required=True, help="JSON: the image encoder's config entry")
    features.add_argument("--adaptor-dir", required=True)
    features.add_argument("--out", required=True)
    features.add_argument("--threads", type=int, default=1)
    features.set_defaults(run=cmd_features)

    subsets = sub.add_parser("subsets", help="draw the label-fraction subsets of the train split")
    subsets.add_argument("--manifest", required=True)
    subsets.add_argument("--fractions", nargs="+", required=True)
    subsets.add_argument("--seeds", nargs="+", required=True)
    subsets.add_argument("--protocol", choices=["strict", "mgca"], default="strict")
    subsets.add_argument(
        "--exclude", nargs="+", required=True, help="rejects tables of the dataset's image caches"
    )
    subsets.add_argument("--out", required=True)
    subsets.set_defaults(run=cmd_subsets)

    evaluate = sub.add_parser(
        "evaluate", help="train and test one head: one (dataset, method, fraction, seed)"
    )
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--features", required=True)
    evaluate.add_argument("--subsets", required=True)
    evaluate.add_argument("--exclude", nargs="+", required=True, help="rejects tables of the image caches")
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
