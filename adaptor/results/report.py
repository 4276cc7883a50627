"""The report: every headline table in one Markdown file, readable without opening Parquet, and as
one small HTML page each for Snakemake's HTML report (``snakemake --report``)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from adaptor.provenance import SOFTWARE_COLUMNS
from adaptor.results import costs, published, tables
from adaptor.results.figure_files import REPORT_TABLES
from adaptor.results.tables import DICE_METRICS, PRIMARY_METRICS, summary

# The stages whose jobs run after the tables are written (their benchmark folders).
AFTER_TABLES = ("report", "figures")


def _markdown(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in frame.iter_rows())
    return header + body


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Section:
    """One table of the report (or a few under one title), with the sentence that says how to read it."""

    title: str
    note: str
    tables: list[tuple[str, pl.DataFrame]] = field(default_factory=list)


def _over_seeds(frame: pl.DataFrame, metrics: tuple[str, ...] = PRIMARY_METRICS) -> pl.DataFrame:
    """Wide view: one column per label fraction, each cell "mean ± std" over seeds."""
    table = summary(frame, metrics).with_columns(
        pl.when(pl.col("std").is_null())
        .then(pl.col("mean").round(3).cast(pl.String))
        .otherwise(pl.format("{} ± {}", pl.col("mean").round(3), pl.col("std").round(3)))
        .alias("mean ± std")
    )
    return table.pivot(
        on="fraction",
        index=["dataset", "protocol", "metric", "method", "image_encoder", "text_encoder"],
        values="mean ± std",
    )


def _segmentation_section(segmentation: pl.DataFrame) -> Section:
    note = (
        "Test split, mean ± std over seeds. `dice_mgca` scores an empty mask 1 when the prediction is empty "
        "(MGCA's metric); `dice_positive` averages images with a mask only; `dice_empty_predictor` is what "
        "predicting nothing scores under `dice_mgca`. `decoder`: `unet` over a CNN's stage maps, `conv` over "
        "the patch-token grid."
    )
    if segmentation.is_empty():
        return Section("Segmentation", "No segmentation was run.")
    models = ["dataset", "method", "image_encoder", "text_encoder"]
    decoders = segmentation.select(*models, "decoder").unique(maintain_order=True)
    table = _over_seeds(segmentation, DICE_METRICS).join(decoders, on=models, how="left", nulls_equal=True)
    columns = table.columns
    at = columns.index("text_encoder") + 1
    table = table.select(*columns[:at], "decoder", *[c for c in columns[at:] if c != "decoder"])
    flagged = (
        segmentation.filter(~pl.col("beats_empty_predictor"))
        .select("dataset", "method", "image_encoder", "text_encoder", "fraction", "seed")
        .unique()
        .sort(pl.all())
    )
    below = f"{len(flagged)} cells do not beat the empty predictor under `dice_mgca`"
    return Section(
        "Segmentation",
        note,
        [("", table), (below + (":" if len(flagged) else "."), flagged)],
    )


def _zeroshot_section(zeroshot: pl.DataFrame) -> Section:
    view = zeroshot.select(
        "dataset",
        "protocol",
        "method",
        "image_encoder",
        "text_encoder",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_test",
    )
    note = "Test-split AUROC from one positive and one negative prompt per class, 95 % bootstrap interval."
    return Section("Zero-shot (no labels)", note, [("", view)] if len(view) else [])


def _fraction_columns(frame: pl.DataFrame, index: list[str], shown: pl.Expr) -> pl.DataFrame:
    """One column per label fraction ("1 %", "10 %", "100 %", in that order), each cell ``shown``."""
    label = pl.format("{} %", (pl.col("fraction") * 100).round(0).cast(pl.Int64))
    order = frame.select(pl.col("fraction").unique().sort()).select(label.alias("label"))["label"].to_list()
    wide = frame.with_columns(label.alias("fraction"), shown.alias("shown"))
    pivoted = wide.pivot(on="fraction", index=index, values="shown", aggregate_function="first")
    return pivoted.select(*index, *order)


def published_section(comparison: pl.DataFrame, demo: bool) -> Section:
    note = (
        f"Ours (mean ± std over seeds) beside the numbers of {published.SOURCE}, in percent; rows marked "
        f"'{published.PUBLISHED}' were measured there, on MIMIC-CXR, RSNA, COVIDx and SIIM."
    )
    if demo:
        note += f"\n\n**{published.NOT_COMPARABLE}**"
    shown = (
        pl.when(pl.col("std").is_null())
        .then(pl.col("percent").round(1).cast(pl.String))
        .otherwise(pl.format("{} ± {}", pl.col("percent").round(1), pl.col("std").round(1)))
    )
    index = ["source", "method", "image_encoder", "text_encoder"]
    blocks = [
        (f"{dataset}, {metric}", _fraction_columns(block, index, shown))
        for (dataset, metric), block in comparison.group_by("dataset", "metric", maintain_order=True)
    ]
    return Section("Beside the published numbers", note, blocks)


def _millions(column: str) -> pl.Expr:
    return pl.format("{} M", (pl.col(column) / 1e6).round(2))


def _parameters_section(parameters: pl.DataFrame) -> Section:
    trainable = (
        pl.when(pl.col("trainable_min") == pl.col("trainable_max"))
        .then(_millions("trainable_max"))
        .otherwise(pl.format("{}–{}", _millions("trainable_min"), _millions("trainable_max")))
    )
    view = parameters.select(
        "source",
        "method",
        "image_encoder",
        "text_encoder",
        trainable.alias("trainable"),
        _millions("frozen").alias("frozen"),
        pl.format("{} %", (pl.col("trainable_share") * 100).round(1)).alias("trainable share"),
        pl.when("exact").then(pl.lit("exact")).otherwise(pl.lit("approximate")).alias("count"),
    )
    note = (
        "Trainable against frozen parameters: each Adaptor of this run, then the published counts "
        f"({published.SOURCE}; the Adaptor's with BERT-base as text encoder)."
    )
    return Section("Parameters", note, [("", view)])


def _dividend_view(dividend: pl.DataFrame) -> pl.DataFrame:
    """The dividend's columns as a reader scans them: seconds to one decimal, the ratio as a factor."""
    seconds = {
        "pretrain_seconds": "pre-training s",
        "image_embed_seconds": "image cache s",
        "text_embed_seconds": "text cache s",
        "cached_seconds": "cached s",
        "encoders_in_loop_seconds": "encoders in loop s",
    }
    return dividend.select(
        "image_encoder",
        "text_encoder",
        "mode",
        pl.col("epochs_run").alias("epochs"),
        *(pl.col(name).round(1).alias(shown) for name, shown in seconds.items()),
        pl.format("{}x", pl.col("dividend").round(1)).alias("dividend"),
    )


def cost_sections(wall: pl.DataFrame, dividend: pl.DataFrame) -> dict[str, Section]:
    stages = Section(
        "Wall time by stage",
        "Seconds summed over each stage's jobs (from their benchmark files), and each stage's share.",
        [("", costs.stage_seconds(wall))],
    )
    cache = Section(
        "Cache dividend",
        "Pre-training from the cache pays for the two frozen encoders once (`cached s`: both caches and "
        "pre-training); with the encoders in the loop every epoch would run them again "
        "(`encoders in loop s`, forward passes only: a lower bound). Downstream heads read the same "
        "caches; their saving is not counted here.",
        [("", _dividend_view(dividend))],
    )
    if wall.is_empty():
        # Object storage keeps the jobs' benchmark files off the machine the report runs on.
        missing = (
            "No job's benchmark file was found on this machine (with object storage they stay in the "
            "bucket): these seconds are unknown, not zero."
        )
        stages, cache = (Section(part.title, missing) for part in (stages, cache))
    return {"wall_time": stages, "cache_dividend": cache}


# The tables whose rows the software section counts: each cell and each trained Adaptor once.
MADE_BY_STACKS = ("classification", "segmentation", "zeroshot", "pretraining")


def software_section(frames: dict[str, pl.DataFrame]) -> Section:
    """The software stacks that made the results, one row each, with how many rows of each table
    each made: two rows mean the tables mix results of two stacks."""
    made = [
        frames[name].select(SOFTWARE_COLUMNS).with_columns(pl.lit(name).alias("table"))
        for name in MADE_BY_STACKS
        if len(frames[name])
    ]
    note = (
        "The versions behind every result row (its `software_*` columns): adaptor and its git commit "
        "(`+dirty`: with uncommitted changes), Python, torch, timm, transformers, numpy, and CUDA and "
        "cuDNN where the work ran on a GPU. Counts are rows of each table."
    )
    if not made:
        return Section("Software", note)
    counted = (
        pl.concat(made)
        .group_by(*SOFTWARE_COLUMNS, "table")
        .len()
        .pivot(on="table", index=list(SOFTWARE_COLUMNS), values="len")
    )
    present = [name for name in MADE_BY_STACKS if name in counted.columns]  # the pivot's order is not
    stacks = (
        counted.select(*SOFTWARE_COLUMNS, pl.col(present).fill_null(0))
        .sort(SOFTWARE_COLUMNS, nulls_last=True)
        .rename({c: c.removeprefix("software_") for c in SOFTWARE_COLUMNS})
    )
    return Section("Software", note, [("", stacks)])


def sections(frames: dict[str, pl.DataFrame], demo: bool, pretrain_dataset: str) -> dict[str, Section]:
    """Every section of the report from the run's tables, by name (the HTML pages' names)."""
    recall = (
        frames["retrieval"]
        .with_columns(pl.format("R@{}", pl.col("k")).alias("k"))
        .pivot(
            on="k", index=["image_encoder", "text_encoder", "mode", "direction", "n_pairs"], values="recall"
        )
    )
    found = {
        "classification": Section(
            "Classification",
            "Test split, mean ± std over seeds; columns are label fractions.",
            [("", _over_seeds(frames["classification"]))],
        ),
        "segmentation": _segmentation_section(frames["segmentation"]),
        "zeroshot": _zeroshot_section(frames["zeroshot"]),
        "published": published_section(published.beside_published(frames["summary"]), demo),
        "pretraining": Section(
            "Pre-training", "", [("", frames["pretraining"].select(pl.exclude("^stage_seconds/.*$")))]
        ),
        "retrieval": Section(
            "Retrieval on the validation pairs",
            "Recall@K, each query's own pair the only right answer; chance is K / n_pairs.",
            [("", recall)],
        ),
        "parameters": _parameters_section(published.parameters(frames["pretraining"])),
        **cost_sections(
            frames["wall_time"],
            costs.cache_dividend(frames["wall_time"], frames["pretraining"], pretrain_dataset),
        ),
        "software": software_section(frames),
    }
    return {name: found[name] for name in MARKDOWN_ORDER}


# The Markdown report's order: results first, then how they compare and what they cost.
MARKDOWN_ORDER = (
    "classification",
    "segmentation",
    "zeroshot",
    "published",
    "pretraining",
    "retrieval",
    "parameters",
    "wall_time",
    "cache_dividend",
    "software",
)


def markdown(found: dict[str, Section]) -> str:
    """The whole report as Markdown."""
    text = "# Adaptor results\n"
    for section in found.values():
        text += f"\n## {section.title}\n\n" + (f"{section.note}\n\n" if section.note else "")
        for heading, frame in section.tables:
            text += (f"{heading}\n\n" if heading else "") + (_markdown(frame) + "\n" if len(frame) else "")
    return text


def _inline(text: str) -> str:
    """Markdown's code spans and bold as HTML, everything else escaped."""
    text = re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))
    return re.sub(r"\*\*([^*]*)\*\*", r"<strong>\1</strong>", text)


def _html_cell(value: object) -> str:
    kind = "text" if isinstance(value, str) or value is None else "number"
    return f'<td class="{kind}">{html.escape(_cell(value))}</td>'


def _html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(map(_html_cell, row)) + "</tr>" for row in frame.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:system-ui,sans-serif;font-size:13px;margin:12px}"
    "table{border-collapse:collapse;margin:6px 0 18px}"
    "th,td{border:1px solid #d0d0d0;padding:3px 8px;white-space:nowrap}th{background:#f3f3f3;text-align:left}"
    "td.number{text-align:right;font-variant-numeric:tabular-nums}"
)


def html_page(section: Section) -> str:
    """One section as a self-contained HTML page (Snakemake's report shows it inline)."""
    parts = [f"<h3>{html.escape(section.title)}</h3>"]
    parts += [f"<p>{_inline(paragraph)}</p>" for paragraph in section.note.split("\n\n") if paragraph]
    for heading, frame in section.tables:
        parts += [f"<h4>{_inline(heading)}</h4>"] if heading else []
        parts += [_html_table(frame)] if len(frame) else []
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(section.title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_report(found: dict[str, Section], path: str | Path, html_dir: str | Path) -> None:
    """``report.md`` and one HTML page per report table (the names ``REPORT_TABLES`` lists)."""
    Path(path).write_text(markdown(found))
    html_dir = Path(html_dir)
    html_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORT_TABLES:
        (html_dir / f"{name}.html").write_text(html_page(found[name]))


def write_tables_and_report(
    runs: dict[str, list[str]],
    pretrained: list[tuple[str, str, str]],
    benchmarks_dir: str | Path,
    out_dir: str | Path,
    report: str | Path,
    html_dir: str | Path,
    pretrain_dataset: str,
    demo: bool,
) -> None:
    """Every table (``runs`` by task: classification, segmentation, zeroshot result files) as
    Parquet under ``out_dir``, each written whole or not at all, then the Markdown report and the
    HTML report's tables; ``demo`` says the run was on the demo's generated data."""
    classification = tables.runs(runs["classification"])
    segmentation = tables.runs(runs["segmentation"])
    # Every job's benchmark file but those of the jobs that run after the tables (the report's
    # own, written once it ends, and the figures drawn from it): a rerun would otherwise count the
    # previous run's beside this run's jobs.
    timed = [
        f
        for f in Path(benchmarks_dir).rglob("*.tsv")
        if f.relative_to(benchmarks_dir).parts[0] not in AFTER_TABLES
    ]
    wall = tables.wall_times(sorted(timed))
    stage_seconds = dict(wall.group_by("stage").agg(pl.col("seconds").sum()).rows())
    written = {
        "classification": classification,
        "segmentation": segmentation,
        "zeroshot": tables.runs(runs["zeroshot"], tables.ZEROSHOT_COLUMNS),
        "pretraining": tables.pretraining(pretrained, stage_seconds),
        "pretraining_curves": tables.pretraining_curves(pretrained),
        "retrieval": tables.retrieval(pretrained),
        "wall_time": wall,
        "summary": tables.seed_summary(classification, segmentation),
    }
    for name, frame in written.items():
        tables.write_atomic(frame, Path(out_dir) / f"{name}.parquet")
    write_report(sections(written, demo, pretrain_dataset), report, html_dir)
