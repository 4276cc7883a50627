"""Command-line entry points, one per workflow stage. Rules call these; logic lives in the package.

Settings arrive as JSON strings from the rule's ``params`` so that Snakemake reruns a job exactly
when a setting it uses changes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptor.results.figure_files import FIGURE_TABLES

if TYPE_CHECKING:
    import polars as pl

    from adaptor.cache.store import Cache
    from adaptor.data.manifest import ManifestInfo
    from adaptor.encoders.embed import EmbedSettings
    from adaptor.encoders.registry import LoadedEncoder

log = logging.getLogger("adaptor")


def _configure_logging() -> None:
    """INFO lines with time and source. faiss's loader logs every CPU-specific build it fails to
    find before the one it loads (eight harmless tracebacks): it speaks only at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


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
    from adaptor.data.prepare import log_summary, prepare

    settings = json.loads(args.settings)
    frame, info, rejects = prepare(
        args.dataset, settings["reader"], settings["root"], settings, args.on_error, args.workers
    )
    manifest.write(frame, info, args.out)
    rejects.write_parquet(args.rejects)
    log_summary(args.dataset, frame, info, rejects, args.rejects)


def cmd_check_data(args: argparse.Namespace) -> None:
    from adaptor import config
    from adaptor.check import check_data, format_check

    checks = check_data(config.load(args.config), args.datasets, args.workers)
    print("\n\n".join(map(format_check, checks)))
    failed = [check.name for check in checks if check.problems]
    if failed:
        log.error("not ready: %s (see PROBLEM lines above)", ", ".join(failed))
        sys.exit(1)
    log.info("every dataset has what the config needs")


def _embed_inputs(
    args: argparse.Namespace,
) -> tuple[pl.DataFrame, ManifestInfo, LoadedEncoder, EmbedSettings]:
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
    from adaptor.cache.complete import finalize_cache
    from adaptor.data import manifest

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

    _configure_logging()
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

    # One process per GPU the job holds (claimed in main), one on the CPU without.
    launch(pretrain_job, (args,), world=max(1, torch.cuda.device_count()))


def cmd_features(args: argparse.Namespace) -> None:
    from adaptor.cache import store
    from adaptor.evaluate.features import adaptor_features

    _threads(args.threads)
    source = store.open_cache(args.image_cache, _expected(args.image_encoder, "image", args.image_spec))
    tokens = adaptor_features(source, args.adaptor_dir, args.out)
    log.info("%s: %d samples%s", args.out, len(source.ids), " with patch tokens" if tokens else "")


def cmd_cache_verify(args: argparse.Namespace) -> None:
    from adaptor.cache.store import verify

    damaged = 0
    for path in args.paths:
        problems = verify(path)
        damaged += bool(problems)
        print("\n".join(problems) if problems else f"{path}: whole")
    if damaged:
        log.error("%d of %d caches damaged; delete each and rerun its embed jobs", damaged, len(args.paths))
        sys.exit(1)


def cmd_masks(args: argparse.Namespace) -> None:
    from adaptor.data import manifest
    from adaptor.data.images import Preprocess
    from adaptor.data.masks import write_masks

    frame, _ = manifest.read(args.manifest)
    spec = json.loads(args.image_spec)
    count = write_masks(frame, Preprocess(**spec["preprocess"]), args.out)
    log.info("%s: %d masks of %d samples", args.out, count, len(frame))


def cmd_subsets(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.data import manifest
    from adaptor.evaluate.splits import absent_units
    from adaptor.evaluate.subsets import draw_subsets

    frame, _ = manifest.read(args.manifest)
    absent = absent_units(frame, pl.read_parquet(args.prepare_rejects))
    fractions, seeds = [float(f) for f in args.fractions], [int(s) for s in args.seeds]
    subsets = draw_subsets(frame, fractions, seeds, args.protocol, args.task, args.reader, absent)
    subsets.write_parquet(args.out)
    sizes = subsets.group_by("split", "fraction", "seed").len().sort(pl.all()).rows()
    log.info("%s, protocol %s: (split, fraction, seed, samples) %s", args.task, args.protocol, sizes)


def _cell_inputs(
    args: argparse.Namespace, on_cuda: bool
) -> tuple[pl.DataFrame, ManifestInfo, Cache, dict[str, Any], dict[str, Any]]:
    """What every evaluation cell reads: the manifest minus rejects, its info, the features and the
    identifying columns its rows carry, the software that computes them (``on_cuda``: on a GPU)
    among them."""
    from adaptor.cache.store import open_cache
    from adaptor.data import manifest
    from adaptor.evaluate.run import identity_columns
    from adaptor.evaluate.subsets import without_rejects
    from adaptor.provenance import software, software_columns

    _threads(args.threads)
    frame, info = manifest.read(args.manifest)
    features = open_cache(args.features)
    settings = json.loads(args.settings)
    columns = {
        "method": args.method,
        "image_encoder": args.image_encoder,
        "text_encoder": args.text_encoder or None,
    } | identity_columns(features, settings)
    columns |= software_columns(software(on_cuda))
    return without_rejects(frame, args.exclude), info, features, settings, columns


def _write_rows(rows: pl.DataFrame, out: str) -> None:
    rows.write_parquet(out)
    log.info("%s: %s", out, rows.select("metric", "value", "ci_low", "ci_high").rows())


def _cells(args: argparse.Namespace) -> list[tuple[float, str]]:
    """(fraction, output) of each cell a job trains: one seed's cells at every fraction."""
    if len(args.fractions) != len(args.out):
        raise SystemExit(f"{len(args.fractions)} fractions but {len(args.out)} outputs")
    return [(float(fraction), out) for fraction, out in zip(args.fractions, args.out, strict=True)]


def cmd_evaluate(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.devices import compute_device
    from adaptor.evaluate.probe import HeadSettings
    from adaptor.evaluate.run import evaluate_cell

    device = compute_device()
    frame, info, features, settings, columns = _cell_inputs(args, device.type == "cuda")
    subsets = pl.read_parquet(args.subsets)
    head = HeadSettings(**settings)
    for fraction, out in _cells(args):
        rows = evaluate_cell(frame, info, features, subsets, fraction, args.seed, head, columns, device)
        _write_rows(rows, out)


def cmd_segment(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.cache.store import open_cache
    from adaptor.config import ADAPTOR_MODES
    from adaptor.data.images import Preprocess
    from adaptor.data.masks import masks_for
    from adaptor.devices import compute_device
    from adaptor.encoders.registry import EncoderSpec, load_encoder
    from adaptor.evaluate.decoder_inputs import choose
    from adaptor.evaluate.segmentation import DecoderSettings, segment_cell

    device = compute_device()
    frame, info, features, settings, columns = _cell_inputs(args, device.type == "cuda")
    spec = json.loads(args.image_spec)
    preprocess = Preprocess(**spec["preprocess"])
    subsets = pl.read_parquet(args.subsets)
    decoder_settings = DecoderSettings.from_config(settings)
    image = open_cache(args.image_cache, _expected(args.image_cache_encoder, "image", args.image_spec))
    decoder, inputs = choose(
        decoder_settings.kind,
        features,
        image,
        args.method in ADAPTOR_MODES,
        lambda: load_encoder(EncoderSpec.from_config(args.image_cache_encoder, "image", spec)),
        frame,
        device,
        args.memory_mb * 10**6 // 2,  # half the job's memory: the other half trains
        json.loads(args.stage_indices),
    )
    for fraction, out in _cells(args):
        rows = segment_cell(
            frame,
            info,
            inputs,
            lambda frame: masks_for(args.masks, frame, preprocess),
            subsets,
            fraction,
            args.seed,
            decoder_settings,
            columns,
            device,
            decoder,
        )
        _write_rows(rows, out)


def cmd_zeroshot(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.encoders.registry import EncoderSpec
    from adaptor.evaluate.zeroshot import zeroshot_on_test_split

    frame, info, features, prompts, columns = _cell_inputs(args, on_cuda=False)  # prompts on the CPU
    spec = EncoderSpec.from_config(args.text_encoder, "text", json.loads(args.text_spec))
    subsets = pl.read_parquet(args.subsets)
    rows = zeroshot_on_test_split(frame, info, features, subsets, args.adaptor_dir, spec, prompts, columns)
    _write_rows(rows, args.out)


def cmd_report(args: argparse.Namespace) -> None:
    from adaptor.results.report import write_tables_and_report

    runs = {
        "classification": args.runs,
        "segmentation": args.segmentation_runs,
        "zeroshot": args.zeroshot_runs,
    }
    encoders = json.loads(args.pretrain_encoders)
    pretrained = [
        (image, text, metrics) for (image, text), metrics in zip(encoders, args.pretrain_metrics, strict=True)
    ]
    write_tables_and_report(
        runs,
        pretrained,
        args.benchmarks_dir,
        args.out_dir,
        args.report,
        args.html_dir,
        args.pretrain_dataset,
        args.demo,
    )


def _data_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that render demo data, check dataset folders, prepare manifests."""
    demo = sub.add_parser("demo", help="render one demo dataset in its real on-disk layout")
    demo.add_argument("--dataset", required=True, choices=["mimic", "rsna", "covidx", "chexpert", "siim"])
    demo.add_argument("--out", required=True)
    demo.add_argument("--n", type=lambda v: None if v in ("all", "None") else int(v), required=True)
    demo.add_argument("--size", type=int, default=256)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=cmd_demo)

    check = sub.add_parser(
        "check-data", help="compare each configured dataset folder with its release, before running anything"
    )
    check.add_argument("--config", nargs="+", required=True, help="config files, merged in order")
    check.add_argument("--datasets", nargs="+", help="only these datasets (default: all in the config)")
    check.add_argument("--workers", type=int, default=2, help="processes reading reports")
    check.set_defaults(run=cmd_check_data)

    prep = sub.add_parser("prepare", help="read a dataset into a manifest + rejects table")
    prep.add_argument("--dataset", required=True)
    prep.add_argument("--settings", required=True, help="JSON: the dataset's config entry")
    prep.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    prep.add_argument("--out", required=True)
    prep.add_argument("--rejects", required=True)
    prep.add_argument("--workers", type=int, default=1, help="processes reading reports")
    prep.set_defaults(run=cmd_prepare)


def _gpus_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--gpus",
        type=int,
        help="claim this many of the visible GPUs for the job alone (0: run on the CPU); default: use all",
    )


def _embed_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that embed into caches, in one process or in parts, and check caches."""

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
    _gpus_argument(embed)
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
    _gpus_argument(part)
    part.set_defaults(run=cmd_embed_part)

    final = sub.add_parser("embed-finalize", help="check every shard is written; write the rejects table")
    final.add_argument("--manifest", required=True)
    final.add_argument("--modality", required=True, choices=["image", "text"])
    final.add_argument("--cache", required=True)
    final.add_argument("--rejects", required=True)
    final.set_defaults(run=cmd_embed_finalize)

    cache = sub.add_parser("cache", help="inspect embedding caches")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    verify = cache_commands.add_parser(
        "verify", help="read every shard of each cache; name missing or corrupt files and their rows"
    )
    verify.add_argument("paths", nargs="+", help="cache folders, e.g. results/cache/rsna/image/<name>.zarr")
    verify.set_defaults(run=cmd_cache_verify)


def _train_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that pre-train the Adaptor and cache its image path."""
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
    _gpus_argument(train)
    train.set_defaults(run=cmd_pretrain)

    features = sub.add_parser("features", help="cache the frozen Adaptor image path over a dataset")
    features.add_argument("--image-cache", required=True)
    features.add_argument("--image-encoder", required=True)
    features.add_argument("--image-spec", required=True, help="JSON: the image encoder's config entry")
    features.add_argument("--adaptor-dir", required=True)
    features.add_argument("--out", required=True)
    features.add_argument("--threads", type=int, default=1)
    features.set_defaults(run=cmd_features)


def _evaluate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that draw subsets, rasterise masks, evaluate cells."""
    subsets = sub.add_parser(
        "subsets", help="one task's split under the protocol: label-fraction subsets of train, val, test"
    )
    subsets.add_argument("--manifest", required=True)
    subsets.add_argument(
        "--task", choices=["classification", "segmentation", "zeroshot"], default="classification"
    )
    subsets.add_argument("--reader", default="", help="the dataset's reader: which of MGCA's splits (mgca)")
    subsets.add_argument("--fractions", nargs="*", default=[], help="none for zero-shot")
    subsets.add_argument("--seeds", nargs="*", default=[], help="none for zero-shot (its test split alone)")
    subsets.add_argument("--protocol", choices=["strict", "mgca", "mgca_clean"], default="strict")
    subsets.add_argument(
        "--prepare-rejects", required=True, help="the rejects table of prepare: samples MGCA's splits count"
    )
    subsets.add_argument("--out", required=True)
    subsets.set_defaults(run=cmd_subsets)

    masks = sub.add_parser("masks", help="rasterise a dataset's masks / boxes in an encoder's geometry")
    masks.add_argument("--manifest", required=True)
    masks.add_argument("--image-spec", required=True, help="JSON: the image encoder's config entry")
    masks.add_argument("--out", required=True)
    masks.set_defaults(run=cmd_masks)

    def cell_arguments(command: argparse.ArgumentParser, settings_help: str) -> None:
        command.add_argument("--manifest", required=True)
        command.add_argument("--features", required=True)
        command.add_argument(
            "--exclude", required=True, help="the rejects table of the image cache behind the features"
        )
        command.add_argument("--method", required=True)
        command.add_argument("--image-encoder", required=True)
        command.add_argument("--text-encoder", default="")
        command.add_argument("--settings", required=True, help=settings_help)
        command.add_argument("--threads", type=int, default=1)

    def fraction_arguments(command: argparse.ArgumentParser) -> None:
        command.add_argument("--subsets", required=True, help="the seed's subsets table")
        command.add_argument("--seed", type=int, required=True)
        command.add_argument("--fractions", nargs="+", required=True)
        command.add_argument("--out", nargs="+", required=True, help="one result file per fraction, in order")

    evaluate = sub.add_parser(
        "evaluate", help="train and test classification heads: one (dataset, method, seed) at each fraction"
    )
    cell_arguments(evaluate, "JSON: the head settings")
    fraction_arguments(evaluate)
    _gpus_argument(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    segment = sub.add_parser(
        "segment", help="train and test segmentation decoders: one (dataset, method, seed) at each fraction"
    )
    cell_arguments(segment, "JSON: the decoder settings")
    fraction_arguments(segment)
    segment.add_argument("--masks", required=True, help="the masks rule's output")
    segment.add_argument("--image-cache", required=True, help="the image cache under --features")
    segment.add_argument("--image-cache-encoder", required=True, help="the encoder behind --image-cache")
    segment.add_argument(
        "--image-spec", required=True, help="JSON: that encoder's config entry (its geometry is the masks')"
    )
    segment.add_argument(
        "--memory-mb", type=int, default=16000, help="the job's memory: half of it may hold stage maps"
    )
    segment.add_argument(
        "--stage-indices", default="null", help="JSON: the stages a U-Net computes here reads (null: all)"
    )
    _gpus_argument(segment)
    segment.set_defaults(run=cmd_segment)

    zeroshot = sub.add_parser("zeroshot", help="zero-shot AUROC from class prompts: one (dataset, Adaptor)")
    cell_arguments(zeroshot, "JSON: {class: [positive prompt, negative prompt]}")
    zeroshot.add_argument("--out", required=True)
    zeroshot.add_argument("--adaptor-dir", required=True)
    zeroshot.add_argument("--subsets", required=True, help="the zero-shot subsets: whose test split")
    zeroshot.add_argument("--text-spec", required=True, help="JSON: the text encoder's config entry")
    zeroshot.set_defaults(run=cmd_zeroshot)


def cmd_figures(args: argparse.Namespace) -> None:
    import polars as pl

    from adaptor.results.figures import draw_all

    frames = {name: pl.read_parquet(getattr(args, name)) for name in FIGURE_TABLES}
    figures = draw_all(
        frames, args.classification_datasets, args.segmentation_datasets, args.zeroshot_datasets, args.out_dir
    )
    for figure in figures:
        log.info("%s: %s", figure.name, figure.series)


def _report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that aggregate results."""
    report = sub.add_parser("report", help="aggregate every run into Parquet tables and a report")
    report.add_argument("--runs", nargs="+", required=True, help="classification results")
    report.add_argument("--segmentation-runs", nargs="*", default=[])
    report.add_argument("--zeroshot-runs", nargs="*", default=[])
    report.add_argument("--pretrain-metrics", nargs="+", required=True, help="each Adaptor's metrics.json")
    report.add_argument(
        "--pretrain-encoders",
        required=True,
        help="JSON: [image, text] encoder names of each metrics file, in order",
    )
    report.add_argument("--benchmarks-dir", required=True, help="folder of Snakemake benchmark: files")
    report.add_argument("--out-dir", required=True)
    report.add_argument("--report", required=True, help="the Markdown report")
    report.add_argument("--html-dir", required=True, help="folder of the HTML report's table pages")
    report.add_argument("--pretrain-dataset", required=True, help="the dataset the Adaptors trained on")
    report.add_argument(
        "--demo", action="store_true", help="the run read the demo's generated data (said beside the paper's)"
    )
    report.set_defaults(run=cmd_report)
    figures = sub.add_parser("figures", help="every figure of the report (SVG and PNG) from the tables")
    for name in FIGURE_TABLES:
        figures.add_argument(
            f"--{name.replace('_', '-')}", required=True, help=f"results/tables/{name}.parquet"
        )
    figures.add_argument("--classification-datasets", nargs="*", default=[])
    figures.add_argument("--segmentation-datasets", nargs="*", default=[])
    figures.add_argument("--zeroshot-datasets", nargs="*", default=[])
    figures.add_argument("--out-dir", required=True)
    figures.set_defaults(run=cmd_figures)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="adaptor", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)
    for commands in (_data_commands, _embed_commands, _train_commands, _evaluate_commands, _report_commands):
        commands(sub)
    return main


def main(argv: list[str] | None = None) -> None:
    _configure_logging()
    args = parser().parse_args(argv)
    from adaptor.errors import REPORTED, storage_problem
    from adaptor.gpus import claimed_gpus

    try:
        with claimed_gpus(args.gpus) if getattr(args, "gpus", None) is not None else contextlib.nullcontext():
            args.run(args)
    except REPORTED as error:
        log.error("%s", error)
        sys.exit(1)
    except OSError as error:
        outputs = [str(v) for k in ("out", "out_dir", "rejects", "report") if (v := getattr(args, k, None))]
        problem = storage_problem(error, outputs)
        if problem is None:
            raise
        log.error("%s", problem)
        sys.exit(1)


if __name__ == "__main__":
    main()
