import json
from pathlib import Path

import polars as pl

from adaptor.results import report, tables
from adaptor.results.figure_files import REPORT_TABLES


def _run(path: Path, method: str, seed: int, value: float) -> Path:
    frame = pl.DataFrame(
        {
            "dataset": ["rsna"],
            "task": ["binary"],
            "method": [method],
            "protocol": ["strict"],
            "image_encoder": ["e"],
            "text_encoder": [None if method == "frozen" else "t"],
            "fraction": [0.1],
            "seed": [seed],
            "metric": ["auroc"],
            "value": [value],
            "ci_low": [value - 0.1],
            "ci_high": [value + 0.1],
            "n_train": [10],
            "n_test": [5],
            "wall_seconds": [1.0],
        }
    )
    frame.write_parquet(path)
    return path


def _dice(path: Path, seed: int) -> Path:
    mgca = 0.8 if seed == 0 else 0.7
    pl.DataFrame(
        {
            "dataset": "siim",
            "task": "segmentation",
            "method": "frozen",
            "protocol": "strict",
            "image_encoder": "e",
            "text_encoder": None,
            "fraction": 0.1,
            "seed": seed,
            "metric": ["dice_mgca", "dice_positive", "dice_empty_predictor"],
            "value": [mgca, 0.3, 0.75],
            "ci_low": 0.0,
            "ci_high": 1.0,
            "n_train": 4,
            "n_test": 8,
            "beats_empty_predictor": mgca > 0.75,
            "decoder": "unet",
        }
    ).write_parquet(path)
    return path


def test_tables_and_report(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path / f"{m}{s}.parquet", m, s, v)
        for m, s, v in (("adaptor", 0, 0.8), ("adaptor", 1, 0.9), ("frozen", 0, 0.6))
    ]
    classification = tables.runs(runs)
    assert classification.columns[:14] == list(tables.RUN_COLUMNS)
    assert classification.schema["fraction"] == pl.Float64
    segmentation = tables.runs([_dice(tmp_path / f"d{seed}.parquet", seed) for seed in (0, 1)])
    zeroshot_file = tmp_path / "z.parquet"
    pl.DataFrame(
        {
            **{
                c: [v]
                for c, v in zip(
                    ("dataset", "task", "method", "protocol", "image_encoder"),
                    ("rsna", "zeroshot", "adaptor", "strict", "e"),
                    strict=True,
                )
            },
            **{
                "text_encoder": ["t"],
                "metric": ["auroc"],
                "value": [0.7],
                "ci_low": [0.6],
                "ci_high": [0.8],
                "n_test": [5],
            },
        }
    ).write_parquet(zeroshot_file)
    zeroshot = tables.runs([zeroshot_file], tables.ZEROSHOT_COLUMNS)
    assert zeroshot.columns[:11] == list(tables.ZEROSHOT_COLUMNS)
    assert tables.runs([], tables.ZEROSHOT_COLUMNS).is_empty()
    bench = tmp_path / "benchmarks" / "pretrain" / "e" / "t.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\n12.5\t0:00:12\n")
    wall = tables.wall_times([bench])
    assert wall.rows() == [("pretrain", str(bench.with_suffix("")), 12.5)]
    metrics = tmp_path / "adaptors" / "some" / "folder" / "metrics.json"  # names come from the caller
    metrics.parent.mkdir(parents=True)
    keys = (
        "trainable_parameters",
        "frozen_parameters",
        "epochs_run",
        "best_epoch",
        "best_val_loss",
        "chance_val_loss",
        "n_train",
        "n_val",
        "train_samples_per_second",
        "wall_seconds",
    )
    recalls = {"image_to_text/R@1": 0.25, "image_to_text/R@5": 0.5, "text_to_image/R@1": 0.2}
    history = [{"epoch": e, "train_loss": 5.0 - e, "val_loss": 4.5 - e / 2} for e in range(3)]
    metrics.write_text(
        json.dumps(
            {"mode": "pooled", "retrieval": recalls, "history": history, **dict.fromkeys(keys, 1)}
            | {"n_val": 10}
        )
    )
    pretraining = tables.pretraining([("e", "t", metrics)], {"pretrain": 12.5})
    assert pretraining["image_encoder"][0] == "e" and pretraining["stage_seconds/pretrain"][0] == 12.5
    retrieval = tables.retrieval([("e", "t", metrics)])
    assert retrieval.select("direction", "k", "recall", "chance").rows() == [
        ("image_to_text", 1, 0.25, 0.1),
        ("image_to_text", 5, 0.5, 0.5),
        ("text_to_image", 1, 0.2, 0.1),
    ]
    curves = tables.pretraining_curves([("e", "t", metrics)])
    assert curves.select("mode", "epoch", "train_loss", "val_loss").rows() == [
        ("pooled", 0, 5.0, 4.5),
        ("pooled", 1, 4.0, 4.0),
        ("pooled", 2, 3.0, 3.5),
    ]
    frames = {
        "classification": classification,
        "segmentation": segmentation,
        "zeroshot": zeroshot,
        "pretraining": pretraining,
        "retrieval": retrieval,
        "wall_time": wall,
        "summary": tables.seed_summary(classification, segmentation),
    }
    report.write_report(report.sections(frames, True, "mimic"), tmp_path / "report.md", tmp_path / "html")
    assert sorted(p.stem for p in (tmp_path / "html").iterdir()) == sorted(REPORT_TABLES)
    text = (tmp_path / "report.md").read_text()
    assert "| e | t | pooled | image_to_text | 10 | 0.250 | 0.500 |" in text
    assert "0.85 ± 0.071" in text and "| rsna | strict | auroc | frozen | e |  | 0.6 |" in text
    assert "| siim | strict | dice_empty_predictor | frozen | e |  | unet | 0.75 ± 0.0 |" in text
    assert "| siim | strict | dice_mgca | frozen | e |  | unet | 0.75 ± 0.071 |" in text
    # seed 1 scores 0.7 < 0.75: listed as not beating the empty predictor; seed 0 (0.8) is not
    assert (
        "1 cells do not beat the empty predictor" in text and "| siim | frozen | e |  | 0.100 | 1 |" in text
    )
    assert "| rsna | strict | adaptor | e | t | auroc | 0.700 | 0.600 | 0.800 | 5 |" in text


def test_seed_summary_groups_every_cell_but_its_seed(tmp_path: Path) -> None:
    values = {("adaptor", 0): 0.8, ("adaptor", 1): 0.9, ("adaptor", 2): 0.7, ("frozen", 0): 0.6}
    runs = tables.runs([_run(tmp_path / f"{m}{s}.parquet", m, s, v) for (m, s), v in values.items()])
    dice = tables.runs([_dice(tmp_path / f"dice{s}.parquet", s) for s in (0, 1)])
    summary = tables.seed_summary(runs, dice)
    assert summary.columns == [*tables.SUMMARY_KEYS, "mean", "std", "seeds"]
    by_cell = {(row["method"], row["metric"]): row for row in summary.iter_rows(named=True)}
    assert len(by_cell) == len(summary) == 5  # adaptor and frozen AUROC, three Dice metrics
    adaptor = by_cell[("adaptor", "auroc")]
    assert (adaptor["seeds"], adaptor["text_encoder"]) == (3, "t")
    assert abs(adaptor["mean"] - 0.8) < 1e-12 and abs(adaptor["std"] - 0.1) < 1e-12
    frozen = by_cell[("frozen", "auroc")]
    assert (frozen["seeds"], frozen["mean"], frozen["std"], frozen["text_encoder"]) == (1, 0.6, None, None)
    assert (
        by_cell[("frozen", "dice_mgca")]["seeds"] == 2
        and by_cell[("frozen", "dice_mgca")]["task"] == "segmentation"
    )
    assert abs(by_cell[("frozen", "dice_mgca")]["mean"] - 0.75) < 1e-12


def test_seed_summary_of_no_runs_has_its_columns() -> None:
    empty = tables.seed_summary(pl.DataFrame())
    assert empty.columns == [*tables.SUMMARY_KEYS, "mean", "std", "seeds"] and empty.is_empty()
