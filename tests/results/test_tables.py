import json
from pathlib import Path

import polars as pl

from adaptor.provenance import SOFTWARE_COLUMNS, software, software_columns
from adaptor.results import report, tables
from adaptor.results.figure_files import REPORT_TABLES

SUMMARY = [*tables.SUMMARY_KEYS, "mean", "std", "seeds", "software_stacks", *SOFTWARE_COLUMNS]


def _run(path: Path, method: str, seed: int, value: float, made_by: dict[str, object] | None = None) -> Path:
    """One classification row; ``made_by``: its software columns (none: a file made before them)."""
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
        | {column: [value] for column, value in (made_by or {}).items()}
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
    assert summary.columns == SUMMARY
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
    assert empty.columns == SUMMARY and empty.is_empty()


def test_rows_keep_the_software_that_made_them_and_older_files_get_nulls(tmp_path: Path) -> None:
    here = software_columns(software())
    runs = tables.runs(
        [
            _run(tmp_path / "new.parquet", "adaptor", 0, 0.8, here),
            _run(tmp_path / "old.parquet", "adaptor", 1, 0.9),
        ]
    )
    assert runs.columns[-len(SOFTWARE_COLUMNS) :] == list(SOFTWARE_COLUMNS)
    by_seed = {row["seed"]: row for row in runs.iter_rows(named=True)}
    assert {c: by_seed[0][c] for c in SOFTWARE_COLUMNS} == here
    assert all(by_seed[1][c] is None for c in SOFTWARE_COLUMNS)
    assert tables.runs([]).columns[-len(SOFTWARE_COLUMNS) :] == list(SOFTWARE_COLUMNS)


def test_a_cell_whose_seeds_came_from_two_stacks_says_so(tmp_path: Path) -> None:
    """A mean over seeds of two torch versions is one summary row, but one that names both."""
    here = software_columns(software())
    other = here | {"software_torch": "2.13.0"}
    runs = tables.runs(
        [
            _run(tmp_path / f"{s}.parquet", "adaptor", s, 0.8, made)
            for s, made in ((0, here), (1, here), (2, other))
        ]
        + [_run(tmp_path / "frozen.parquet", "frozen", 0, 0.6, here)]
    )
    by_method = {row["method"]: row for row in tables.seed_summary(runs).iter_rows(named=True)}
    mixed, single = by_method["adaptor"], by_method["frozen"]
    assert (mixed["seeds"], mixed["software_stacks"]) == (3, 2)
    assert mixed["software_torch"] == ", ".join(sorted({"2.13.0", str(here["software_torch"])}))
    assert single["software_stacks"] == 1 and single["software_torch"] == here["software_torch"]
    assert single["software_cuda"] is None  # computed on the CPU
    older = tables.seed_summary(tables.runs([_run(tmp_path / "older.parquet", "adaptor", 0, 0.8)]))
    assert older["software_torch"].to_list() == ["unknown"] and older["software_stacks"].to_list() == [1]
    sections = {
        "classification": runs,
        "segmentation": pl.DataFrame(),
        "zeroshot": pl.DataFrame(),
        "pretraining": pl.DataFrame(),
    }
    stacks = report.software_section(sections | {"zeroshot": runs.head(1)}).tables[0][1]
    assert stacks.columns[-2:] == ["classification", "zeroshot"]  # fixed, whatever the grouping's order
    assert sorted(stacks.select("torch", "classification").rows()) == sorted(
        [("2.13.0", 1), (here["software_torch"], 3)]
    )


def test_an_adaptors_tables_carry_its_metrics_software(tmp_path: Path) -> None:
    here = software()
    history = [{"epoch": 0, "train_loss": 2.0, "val_loss": 1.5}]
    keys = ("trainable_parameters", "frozen_parameters", "epochs_run", "best_epoch", "best_val_loss")
    keys += ("chance_val_loss", "n_train", "train_samples_per_second", "wall_seconds")
    base = {"mode": "pooled", "retrieval": {"image_to_text/R@1": 0.5}, "history": history, "n_val": 4}
    base |= dict.fromkeys(keys, 1)
    made, older = tmp_path / "made.json", tmp_path / "older.json"
    made.write_text(json.dumps(base | {"software": here}))
    older.write_text(json.dumps(base))
    adaptors = [("e", "t", made), ("e", "u", older)]
    for frame in (
        tables.pretraining(adaptors, {}),
        tables.retrieval(adaptors),
        tables.pretraining_curves(adaptors),
    ):
        rows = {row["text_encoder"]: row for row in frame.iter_rows(named=True)}
        assert {c: rows["t"][c] for c in SOFTWARE_COLUMNS} == software_columns(here)
        assert all(rows["u"][c] is None for c in SOFTWARE_COLUMNS)
