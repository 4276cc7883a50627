"""The whole DAG run on the tiny configuration (the session's finished run), and what reruns when a
setting changes or an encoder or a seed is added."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from itertools import product
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
import zarr

from adaptor.cache.store import open_cache
from adaptor.provenance import SOFTWARE_COLUMNS, software, software_columns
from adaptor.results.figure_files import figure_entries, table_entries

Snakemake = Callable[..., subprocess.CompletedProcess[str]]
Scheduled = Callable[[subprocess.CompletedProcess[str]], dict[str, int]]
TINY = Path(__file__).with_name("tiny.yaml")  # the config of the session's finished_run


@pytest.mark.slow
def test_the_dag_writes_every_cell(finished_run: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    table = pl.read_parquet(finished_run / "results/tables/classification.parquet")
    evaluate = config["evaluate"]

    def cells(frame: pl.DataFrame, datasets: list[str]) -> None:
        found = set(frame.select("dataset", "fraction", "seed", "method").unique().iter_rows())
        assert found == set(product(datasets, evaluate["fractions"], evaluate["seeds"], evaluate["methods"]))

    cells(table, evaluate["classification"]["datasets"])
    assert table["features_key"].n_unique() == 3  # one per method, each from its own cache
    headline = table.filter(pl.col("metric").is_in(["auroc", "accuracy", "macro_f1"]))
    assert headline["value"].is_between(0, 1).all()
    per_class = table.filter(pl.col("metric").str.starts_with("auroc/"))["value"]
    assert (per_class.is_nan() | per_class.is_between(0, 1)).all()  # NaN: a class absent from a tiny test set
    pretraining = pl.read_parquet(finished_run / "results/tables/pretraining.parquet")
    width, ffn = (config["pretrain"]["architecture"][key] for key in ("width", "ffn"))
    layer = 4 * width * width + 4 * width + 2 * width * ffn + ffn + width + 4 * width  # attention, FFN, 2 LNs
    assert pretraining["trainable_parameters"][0] == 1280 * width + 384 * width + 2 * layer + 1
    assert pretraining["frozen_parameters"][0] > 20_000_000
    assert pretraining["mode"].to_list() == ["pooled", "tokens"]
    assert pretraining["trainable_parameters"][1] == pretraining["trainable_parameters"][0] + 2 * width
    retrieval = pl.read_parquet(finished_run / "results/tables/retrieval.parquet")
    assert retrieval.height == 2 * 2 * 3 and set(retrieval["mode"]) == {"pooled", "tokens"}
    assert retrieval["recall"].is_between(0, 1).all()
    assert (finished_run / "results/report.md").read_text().startswith("# Adaptor results")
    pretrain_log = (finished_run / "logs/pretrain/efficientnet_lite0/minilm/pooled.log").read_text()
    assert "best validation loss" in pretrain_log and "faiss.loader" not in pretrain_log
    for name in ("classification", "segmentation", "zeroshot"):
        assert set(pl.read_parquet(finished_run / f"results/tables/{name}.parquet")["protocol"]) == {"strict"}
    segmentation = pl.read_parquet(finished_run / "results/tables/segmentation.parquet")
    cells(segmentation, evaluate["segmentation"]["datasets"])
    assert segmentation.group_by("dataset", "method", "fraction", "seed").len()["len"].to_list() == [3] * 3
    assert set(segmentation["metric"]) == {"dice_mgca", "dice_positive", "dice_empty_predictor"}
    assert segmentation["decoder"].unique().to_list() == ["unet"]  # over the stage maps of a 2-part cache
    assert segmentation["value"].is_between(0, 1).all()
    zeroshot = pl.read_parquet(finished_run / "results/tables/zeroshot.parquet")
    assert set(zeroshot.select("dataset", "method").unique().iter_rows()) == set(
        product(["rsna"], ["adaptor", "adaptor_tokens"])
    )
    report = (finished_run / "results/report.md").read_text()
    assert "## Segmentation" in report and "## Zero-shot" in report
    rejects = pl.read_parquet(finished_run / "results/manifests/mimic.rejects.parquet")
    assert set(rejects["kind"]) <= {"filtered"}


@pytest.mark.slow
def test_the_readmes_polars_snippet_reads_the_finished_tables(
    finished_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Python block, run where a workflow finished; summary.parquet holds what its
    by-hand group-by computes."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    monkeypatch.chdir(finished_run)
    names: dict[str, object] = {}
    exec(snippet, names)
    summary, by_hand = names["summary"], names["by_hand"]
    assert isinstance(summary, pl.DataFrame) and isinstance(by_hand, pl.DataFrame)
    classification = summary.filter(pl.col("task") != "segmentation")
    assert len(classification) == len(by_hand) > 0
    joined = classification.join(
        by_hand,
        on=["dataset", "method", "image_encoder", "text_encoder", "fraction", "metric"],
        nulls_equal=True,
    )
    assert len(joined) == len(by_hand)
    assert (joined["mean"] - joined["mean_right"]).abs().max() < 1e-12
    assert (joined["seeds"] == joined["seeds_right"]).all()


@pytest.mark.slow
def test_every_result_row_records_the_software_that_made_it(finished_run: Path) -> None:
    """Each table's software columns hold the stack the jobs ran with (this session's: the same
    checkout and environment), CUDA only where a job computed on a GPU; one stack per summary cell,
    and the report lists it."""
    here = software_columns(software())
    tables = finished_run / "results" / "tables"
    for name in (
        "classification",
        "segmentation",
        "zeroshot",
        "pretraining",
        "pretraining_curves",
        "retrieval",
    ):
        frame = pl.read_parquet(tables / f"{name}.parquet")
        stacks = frame.select(SOFTWARE_COLUMNS).unique()
        assert len(frame) and len(stacks) == 1, (name, stacks)
        made = stacks.row(0, named=True)
        assert {c: made[c] for c in SOFTWARE_COLUMNS[:-2]} == {c: here[c] for c in SOFTWARE_COLUMNS[:-2]}, (
            name
        )
        assert made["software_cuda"] in (None, torch.version.cuda), name
    summary = pl.read_parquet(tables / "summary.parquet")
    assert (summary["software_stacks"] == 1).all() and (
        summary["software_torch"] == here["software_torch"]
    ).all()
    report = (finished_run / "results" / "report.md").read_text()
    assert "## Software" in report and str(here["software_commit"]) in report


@pytest.mark.slow
def test_caches_are_fanned_out_complete_and_keep_tokens_where_asked(finished_run: Path) -> None:
    cache = finished_run / "results/cache/mimic/image/efficientnet_lite0"
    reports = [json.loads(p.read_text()) for p in sorted(cache.with_suffix(".parts").glob("*.json"))]
    assert [r["part"] for r in reports] == [0, 1] and all(r["rows"] > 0 for r in reports)
    assert sorted(s for r in reports for s in r["shards"]) == list(
        range(zarr.open_group(cache.with_suffix(".zarr"))["done"].shape[0])
    )
    image = open_cache(cache.with_suffix(".zarr"))
    text = open_cache(finished_run / "results/cache/mimic/text/minilm.zarr")
    assert image.ids.tolist() == text.ids.tolist() and image.attrs["complete"]
    tokens, mask = text.tokens(text.ids[:2].tolist())
    assert tokens.shape == (2, 32, 384) and mask[:, 0].all()  # [CLS] is always a real token
    assert open_cache(cache.with_suffix(".zarr")).tokens(image.ids[:1].tolist())[0].shape == (1, 4, 1280)
    rsna = open_cache(finished_run / "results/cache/rsna/image/efficientnet_lite0.zarr")
    assert rsna.tokens(rsna.ids[:3].tolist())[0].shape == (3, 4, 1280)  # a 2 x 2 grid at 64 px
    adaptor = open_cache(finished_run / "results/cache/rsna/adaptor/efficientnet_lite0/minilm/pooled.zarr")
    assert adaptor.ids.tolist() == rsna.ids.tolist()
    width = yaml.safe_load(TINY.read_text())["pretrain"]["architecture"]["width"]
    assert adaptor.tokens(adaptor.ids[:3].tolist())[0].shape == (3, 4, width)
    assert pl.read_parquet(cache.with_suffix(".rejects.parquet")).is_empty()


@pytest.mark.slow
def test_changing_the_text_encoder_reruns_only_its_dependants(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    assert scheduled(snakemake(finished_run, TINY, "-n")) == {}
    config = yaml.safe_load(TINY.read_text())
    config["encoders"]["text"]["minilm"]["max_length"] = 24
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = scheduled(snakemake(finished_run, changed, "-n"))
    assert "demo_data" not in jobs and "prepare" not in jobs and "subsets" not in jobs
    # the text encoder is only run over the pre-training set: one cache, in 2 parts
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (1, 2, 1)
    assert jobs["pretrain"] == 2 and jobs["report"] == 1  # pooled and token mode
    assert "masks" not in jobs
    evaluate = config["evaluate"]
    assert jobs["adaptor_features"] == 2  # rsna's, for both modes
    cells = 2 * len(evaluate["seeds"])  # adaptor, adaptor_tokens: one job per seed, every fraction
    assert jobs["evaluate_classification"] == cells  # the frozen baseline stays
    assert jobs["evaluate_segmentation"] == cells and jobs["evaluate_zeroshot"] == 2


@pytest.mark.slow
def test_changing_an_image_preprocessing_reruns_only_that_encoders_jobs(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["encoders"]["image"]["efficientnet_lite0"]["preprocess"]["crop"] = 56
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = scheduled(snakemake(finished_run, changed, "-n"))
    assert "demo_data" not in jobs and "prepare" not in jobs
    # two image caches (mimic, rsna), 2 parts each; no text embedding reruns
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (2, 4, 2)
    assert jobs["pretrain"] == 2 and jobs["adaptor_features"] == 2
    assert "subsets" not in jobs and "zeroshot_split" not in jobs  # drawn from the manifest alone
    assert jobs["masks"] == 1  # masks follow the image geometry
    result = snakemake(finished_run, changed, "-n", "--quiet", "rules", "--printshellcmds")
    assert "--modality text" not in result.stdout


@pytest.mark.slow
def test_adding_a_seed_schedules_only_its_cells(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["evaluate"]["seeds"] = [0, 1]
    added = tmp_path / "added.yaml"
    added.write_text(yaml.safe_dump(config))
    jobs = scheduled(snakemake(finished_run, added, "-n"))
    methods = len(config["evaluate"]["methods"])
    # seed 1's subsets for classification and segmentation, its cells, and the tables
    expected = {"subsets": 2, "evaluate_classification": methods, "evaluate_segmentation": methods}
    assert jobs == expected | {"report": 1, "figures": 1, "all": 1}


@pytest.mark.slow
def test_adding_an_image_encoder_schedules_only_its_work(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    config = yaml.safe_load(TINY.read_text())
    second = config["encoders"]["image"]["efficientnet_lite0"] | {"preprocess": {"resize": 64, "crop": 64}}
    config["encoders"]["image"]["second"] = second
    config["pretrain"]["image_encoders"].append("second")
    added = tmp_path / "added.yaml"
    added.write_text(yaml.safe_dump(config))
    result = snakemake(finished_run, added, "-n", "--printshellcmds")
    jobs = scheduled(result)
    methods = len(config["evaluate"]["methods"])
    expected = {
        "embed_init": 2,  # mimic and rsna images: the new encoder's caches, 2 parts each
        "embed_part": 4,
        "embed_finalize": 2,
        "pretrain": 2,  # pooled and token mode
        "adaptor_features": 2,
        "masks": 1,  # rsna's masks in the new encoder's geometry
        "evaluate_classification": methods,
        "evaluate_segmentation": methods,
        "evaluate_zeroshot": 2,
    }
    assert jobs == expected | {"report": 1, "figures": 1, "all": 1}
    evaluations = [line for line in result.stdout.splitlines() if "python -m adaptor evaluate " in line]
    assert evaluations and all("--image-encoder second " in line for line in evaluations)


@pytest.mark.slow
def test_snakemakes_html_report_holds_every_figure_and_table(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake
) -> None:
    """`snakemake --report` on the finished run embeds every figure the run drew and every table page
    the report rule wrote, each under its category; the demo's caveat is on the first page."""
    evaluate = yaml.safe_load(TINY.read_text())["evaluate"]
    listed = figure_entries(
        evaluate["classification"]["datasets"],
        evaluate["segmentation"]["datasets"],
        list(evaluate["zeroshot"]["prompts"]),
    )
    drawn = sorted(path.name for path in (finished_run / "results/figures").glob("*.svg"))
    assert drawn == sorted(f"{entry.name}.svg" for entry in listed) and len(drawn) == 7
    pages = sorted(path.name for path in (finished_run / "results/report_tables").glob("*.html"))
    assert pages == sorted(f"{entry.name}.html" for entry in table_entries())
    html = tmp_path / "report.html"
    result = snakemake(finished_run, TINY, "--report", str(html))
    assert result.returncode == 0, result.stderr[-3000:]
    text = html.read_text()
    for name in [*drawn, *pages]:
        assert name in text, name
    for category in {entry.category for entry in [*listed, *table_entries()]}:
        assert category in text, category
    assert "This run read the offline demo" in text
    assert "System Message" not in text  # no reStructuredText warning shown to the reader
