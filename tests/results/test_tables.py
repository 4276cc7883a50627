import json
from pathlib import Path

import polars as pl

from adaptor.results import tables
from adaptor.results.report import write_report


def _run(path: Path, method: str, seed: int, value: float) -> Path:
    frame = pl.DataFrame(
        {
            "dataset": ["rsna"],
            "task": ["binary"],
            "method": [method],
            "image_encoder": ["e"],
            "text_encoder": [None if method == "frozen" else "t"],
            "fraction": [0.1],
            "seed": [seed],
            "metric": ["auroc"],
            "value": [value],
            "n_train": [10],
            "n_test": [5],
            "wall_seconds": [1.0],
        }
    )
    frame.write_parquet(path)
    return path


def test_tables_and_report(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path / f"{m}{s}.parquet", m, s, v)
        for m, s, v in (("adaptor", 0, 0.8), ("adaptor", 1, 0.9), ("frozen", 0, 0.6))
    ]
    classification = tables.classification(runs)
    assert classification.columns[:11] == list(tables.CLASSIFICATION_COLUMNS)
    assert classification.schema["fraction"] == pl.Float64
    bench = tmp_path / "benchmarks" / "pretrain" / "e" / "t.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\n12.5\t0:00:12\n")
    wall = tables.wall_times([bench])
    assert wall.rows() == [("pretrain", str(bench.with_suffix("")), 12.5)]
    metrics = tmp_path / "adaptors" / "e" / "t" / "pooled" / "metrics.json"
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
    metrics.write_text(
        json.dumps({"mode": "pooled", "retrieval": recalls, **dict.fromkeys(keys, 1)} | {"n_val": 10})
    )
    pretraining = tables.pretraining([metrics], {"pretrain": 12.5})
    assert pretraining["image_encoder"][0] == "e" and pretraining["stage_seconds/pretrain"][0] == 12.5
    retrieval = tables.retrieval([metrics])
    assert retrieval.select("direction", "k", "recall", "chance").rows() == [
        ("image_to_text", 1, 0.25, 0.1),
        ("image_to_text", 5, 0.5, 0.5),
        ("text_to_image", 1, 0.2, 0.1),
    ]
    write_report(classification, pretraining, retrieval, wall, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "| e | t | pooled | image_to_text | 10 | 0.250 | 0.500 |" in text
    assert "0.85 ± 0.071" in text and "| rsna | auroc | frozen | e |  | 0.6 |" in text
