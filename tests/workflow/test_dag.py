"""The whole DAG on a tiny configuration, inside pytest, and what reruns when a setting changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import polars as pl
import pytest
import yaml
import zarr

from adaptor.cache.store import open_cache

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny.yaml")


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def scheduled(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Rule -> job count from a dry run's job stats table."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if "Nothing to be done" in result.stdout:
        return {}
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    counts = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir, TINY)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_the_dag_writes_every_cell(finished_run: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    table = pl.read_parquet(finished_run / "results/tables/classification.parquet")
    cells = set(table.select("dataset", "fraction", "seed", "method").unique().iter_rows())
    expected = set(
        product(
            config["evaluate"]["datasets"],
            config["evaluate"]["fractions"],
            config["evaluate"]["seeds"],
            ["adaptor", "frozen"],
        )
    )
    assert cells == expected
    headline = table.filter(pl.col("metric").is_in(["auroc", "accuracy", "macro_f1"]))
    assert headline["value"].is_between(0, 1).all()
    per_class = table.filter(pl.col("metric").str.starts_with("auroc/"))["value"]
    assert (per_class.is_nan() | per_class.is_between(0, 1)).all()  # NaN: a class absent from a tiny test set
    pretraining = pl.read_parquet(finished_run / "results/tables/pretraining.parquet")
    assert pretraining["trainable_parameters"][0] == 1280 * 768 + 384 * 768 + 2 * 5_513_984 + 1
    assert pretraining["frozen_parameters"][0] > 20_000_000
    assert pretraining["mode"].to_list() == ["pooled", "tokens"]
    assert pretraining["trainable_parameters"][1] == pretraining["trainable_parameters"][0] + 2 * 768
    retrieval = pl.read_parquet(finished_run / "results/tables/retrieval.parquet")
    assert retrieval.height == 2 * 2 * 3 and set(retrieval["mode"]) == {"pooled", "tokens"}
    assert retrieval["recall"].is_between(0, 1).all()
    assert (finished_run / "results/report.md").read_text().startswith("# Adaptor results")
    rejects = pl.read_parquet(finished_run / "results/manifests/mimic.rejects.parquet")
    assert set(rejects["kind"]) <= {"filtered"}


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
    assert tokens.shape == (2, 64, 384) and mask[:, 0].all()  # [CLS] is always a real token
    assert open_cache(cache.with_suffix(".zarr")).tokens(image.ids[:1].tolist())[0].shape == (1, 4, 1280)
    assert "tokens" not in zarr.open_group(finished_run / "results/cache/rsna/image/efficientnet_lite0.zarr")
    assert pl.read_parquet(cache.with_suffix(".rejects.parquet")).is_empty()


@pytest.mark.slow
def test_changing_the_text_encoder_reruns_only_its_dependants(finished_run: Path, tmp_path: Path) -> None:
    assert scheduled(snakemake(finished_run, TINY, "-n")) == {}
    config = yaml.safe_load(TINY.read_text())
    config["encoders"]["text"]["minilm"]["max_length"] = 48
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = scheduled(snakemake(finished_run, changed, "-n"))
    assert "demo_data" not in jobs and "prepare" not in jobs and "subsets" not in jobs
    # the text encoder is only run over the pre-training set: one cache, in 2 parts
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (1, 2, 1)
    assert jobs["pretrain"] == 2 and jobs["report"] == 1  # pooled and token mode
    assert jobs["adaptor_features"] == 3
    n_adaptor_cells = 3 * len(config["evaluate"]["fractions"]) * len(config["evaluate"]["seeds"])
    assert jobs["evaluate_classification"] == n_adaptor_cells  # the frozen baselines stay


@pytest.mark.slow
def test_changing_an_image_preprocessing_reruns_only_that_encoders_jobs(
    finished_run: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["encoders"]["image"]["efficientnet_lite0"]["preprocess"]["crop"] = 56
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = scheduled(snakemake(finished_run, changed, "-n"))
    assert "demo_data" not in jobs and "prepare" not in jobs
    # four image caches (mimic + 3 evaluation sets), 2 parts each; no text embedding reruns
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (4, 8, 4)
    assert jobs["pretrain"] == 2 and jobs["adaptor_features"] == 3 and jobs["subsets"] == 3
    result = snakemake(finished_run, changed, "-n", "--quiet", "rules", "--printshellcmds")
    assert "--modality text" not in result.stdout


def test_the_papers_sweep_embeds_each_encoder_once_per_dataset(tmp_path: Path) -> None:
    result = snakemake(tmp_path, REPO / "config/paper.yaml", "-n")
    jobs = scheduled(result)
    # MIMIC: 3 image + 5 text encoders; RSNA, COVIDx, CheXpert: the 3 image encoders. 4 parts each.
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (17, 68, 17)
    assert jobs["pretrain"] == 15  # 3 x 5 Adaptors, none with an encoder in the loop
    assert "resources: tmpdir=/tmp, gpu=1, nvidia_gpu=1" in result.stdout


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"]["epochs"] = "ten"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "epochs" in output and "ten" in output
    config["pretrain"]["epochs"] = 3
    config["evaluate"]["datasets"] = ["rsna", "padchest"]
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, "-n")
    assert "evaluate.datasets: 'padchest' is not in datasets" in result.stdout + result.stderr
