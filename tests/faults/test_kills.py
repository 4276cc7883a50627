"""``kill -9`` at seeded moments of embedding, pre-training, an evaluation cell and the report, then
the same command again: it completes, and its outputs equal an uninterrupted run's.

Each stage runs as the workflow runs it (``python -m adaptor <command>``) on the inputs of the
session's finished tiny run. A kill point is either a seeded moment in the stage's uninterrupted
duration or the moment its progress shows on disk (two shards written, two epochs checkpointed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zarr

from adaptor import config as workflow_config
from adaptor.cache.store import open_cache

pytestmark = pytest.mark.fault_injection  # slow: pytest -m fault_injection runs these alone


TINY = Path(__file__).parents[1] / "workflow" / "tiny.yaml"
SEED = 20261129
TIMING = {"wall_seconds", "train_samples_per_second"}
EPOCHS = 4
CELL = "results/runs/rsna/classification/frozen/efficientnet_lite0/none/1.0/0.parquet"


def _moments(stage: str, count: int, duration: float) -> list[float]:
    """``count`` seeded moments within 5-60 % of an uninterrupted run of ``stage`` (not later: a run
    may be quicker than the one timed)."""
    rng = np.random.default_rng([SEED, *stage.encode()])
    return sorted(rng.uniform(0.05, 0.6, count) * duration)


@dataclass
class Stage:
    """One command run in the finished run's folder, writing into an output folder it is given."""

    run: Path
    command: Callable[[Path], list[str]]
    same: Callable[[Path], None]  # asserts an output folder equals the uninterrupted run's outputs
    seconds: float = 0.0  # how long an uninterrupted run took

    def start(self, out: Path) -> subprocess.Popen:
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "adaptor", *self.command(out)]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
        return subprocess.Popen(command, cwd=self.run, **quiet)

    def complete(self, out: Path) -> str:
        """Run to the end; returns the log."""
        process = self.start(out)
        _, log = process.communicate()
        assert process.returncode == 0, log[-3000:]
        return log

    def time_uninterrupted(self, out: Path) -> Stage:
        started = time.perf_counter()
        self.complete(out)
        self.seconds = time.perf_counter() - started
        return self


@pytest.fixture(scope="module")
def settings() -> dict:
    return workflow_config.load([TINY])


# ---- embedding: a randomly initialised ViT, slow enough on one thread to be killed mid-shard
VIT = {
    "kind": "timm",
    "model": "vit_tiny_patch16_224",
    "weights": "random",
    "model_kwargs": {"img_size": 128},
    "preprocess": {"resize": 128, "crop": 128},
    "batch_size": 4,
}


def _embed(out: Path) -> list[str]:
    return [
        *("embed", "--manifest", "results/manifests/rsna.parquet", "--encoder", "vit"),
        *("--modality", "image", "--spec", json.dumps(VIT), "--threads", "1", "--workers", "0"),
        *("--settings", json.dumps({"shard_rows": 8, "chunk_rows": 4, "tokens": True})),
        *("--out", str(out / "c.zarr"), "--rejects", str(out / "rejects.parquet")),
    ]


def _same_cache(reference: Path) -> Callable[[Path], None]:
    def same(out: Path) -> None:
        ours, theirs = open_cache(out / "c.zarr"), open_cache(reference / "c.zarr")
        assert ours.attrs["key"] == theirs.attrs["key"] and ours.ids.tolist() == theirs.ids.tolist()
        np.testing.assert_array_equal(ours.embeddings, theirs.embeddings)
        everyone = ours.ids.tolist()
        np.testing.assert_array_equal(ours.tokens(everyone)[0], theirs.tokens(everyone)[0])
        assert pl.read_parquet(out / "rejects.parquet").equals(pl.read_parquet(reference / "rejects.parquet"))

    return same


@pytest.fixture(scope="module")
def embedding(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    reference = tmp_path_factory.mktemp("embed-reference")
    return Stage(finished_run, _embed, _same_cache(reference)).time_uninterrupted(reference)


# ---- pre-training: the tiny run's MIMIC caches, more epochs than the DAG's
def _pretrain(settings: dict) -> Callable[[Path], list[str]]:
    encoders = settings["encoders"]
    recipe = {"epochs": EPOCHS, "batch_size": 32, "lr": 1e-4, "patience": 10, "mode": "pooled"}

    def command(out: Path) -> list[str]:
        return [
            *("pretrain", "--manifest", "results/manifests/mimic.parquet", "--threads", "1"),
            *("--image-cache", "results/cache/mimic/image/efficientnet_lite0.zarr"),
            *("--text-cache", "results/cache/mimic/text/minilm.zarr"),
            *("--image-encoder", "efficientnet_lite0", "--text-encoder", "minilm"),
            *("--image-spec", json.dumps(encoders["image"]["efficientnet_lite0"])),
            *("--text-spec", json.dumps(encoders["text"]["minilm"]), "--settings", json.dumps(recipe)),
            *("--out-dir", str(out)),
        ]

    return command


def _same_adaptor(reference: Path) -> Callable[[Path], None]:
    def same(out: Path) -> None:
        for name in ("weights.safetensors", "config.json"):
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (out, reference))
        assert {k: v for k, v in ours.items() if k not in TIMING} == {
            k: v for k, v in theirs.items() if k not in TIMING
        }

    return same


@pytest.fixture(scope="module")
def pretraining(finished_run: Path, settings: dict, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    reference = tmp_path_factory.mktemp("pretrain-reference")
    return Stage(finished_run, _pretrain(settings), _same_adaptor(reference)).time_uninterrupted(reference)


# ---- an evaluation cell and the report: the tiny run's own outputs are the uninterrupted run
def _cell(settings: dict) -> Callable[[Path], list[str]]:
    def command(out: Path) -> list[str]:
        return [
            *("evaluate", "--manifest", "results/manifests/rsna.parquet"),
            *("--features", "results/cache/rsna/image/efficientnet_lite0.zarr"),
            *("--subsets", "results/subsets/rsna/classification/0.parquet"),
            *("--exclude", "results/cache/rsna/image/efficientnet_lite0.rejects.parquet"),
            *("--fractions", "1.0", "--seed", "0", "--method", "frozen"),
            *("--image-encoder", "efficientnet_lite0", "--text-encoder", ""),
            *("--settings", json.dumps(settings["evaluate"]["classification"]["head"])),
            *("--out", str(out / "cell.parquet")),
        ]

    return command


@pytest.fixture(scope="module")
def cell(finished_run: Path, settings: dict, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    def same(out: Path) -> None:
        ours, dag = pl.read_parquet(out / "cell.parquet"), pl.read_parquet(finished_run / CELL)
        assert ours.drop("wall_seconds").equals(dag.drop("wall_seconds"))

    return Stage(finished_run, _cell(settings), same).time_uninterrupted(tmp_path_factory.mktemp("cell"))


def _report(finished_run: Path) -> Callable[[Path], list[str]]:
    def found(pattern: str) -> list[str]:
        return sorted(str(p.relative_to(finished_run)) for p in finished_run.glob(pattern))

    def command(out: Path) -> list[str]:
        return [
            *("report", "--runs", *found("results/runs/*/classification/**/*.parquet")),
            *("--segmentation-runs", *found("results/runs/*/segmentation/**/*.parquet")),
            *("--zeroshot-runs", *found("results/runs/*/zeroshot/**/*.parquet")),
            *("--pretrain-metrics", *found("results/adaptors/*/*/*/metrics.json")),
            *(
                "--pretrain-encoders",
                json.dumps([Path(f).parts[2:4] for f in found("results/adaptors/*/*/*/metrics.json")]),
            ),
            *("--benchmarks-dir", "results/benchmarks", "--out-dir", str(out)),
            *("--report", str(out / "report.md"), "--html-dir", str(out / "html")),
            *("--pretrain-dataset", "mimic", "--demo"),
        ]

    return command


@pytest.fixture(scope="module")
def report(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    def same(out: Path) -> None:
        tables = finished_run / "results" / "tables"
        for name in ("classification", "segmentation", "zeroshot", "pretraining", "retrieval"):
            table = f"{name}.parquet"
            assert pl.read_parquet(out / table).equals(pl.read_parquet(tables / table)), name
        assert (out / "report.md").read_text() == (finished_run / "results" / "report.md").read_text()
        dag_pages = sorted((finished_run / "results" / "report_tables").iterdir())
        assert [page.name for page in dag_pages] == sorted(page.name for page in (out / "html").iterdir())
        assert all((out / "html" / page.name).read_text() == page.read_text() for page in dag_pages)

    stage = Stage(finished_run, _report(finished_run), same)
    return stage.time_uninterrupted(tmp_path_factory.mktemp("report"))


SEEDED = {"embedding": 1, "pretraining": 1, "cell": 1, "report": 5}  # kill points per stage


@pytest.mark.parametrize(
    ("name", "point"), [(name, point) for name, count in SEEDED.items() for point in range(count)]
)
def test_a_stage_killed_at_a_seeded_moment_reruns_to_the_same_outputs(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, point: int
) -> None:
    stage: Stage = request.getfixturevalue(name)
    moment = _moments(name, SEEDED[name], stage.seconds)[point]
    process = stage.start(tmp_path)
    time.sleep(moment)
    assert process.poll() is None, f"the run ended before the kill at {moment:.2f} s"
    process.kill()
    process.wait()
    stage.complete(tmp_path)
    stage.same(tmp_path)


def _shards_done(out: Path) -> int:
    done = out / "c.zarr" / "done"
    return int(zarr.open_array(done, mode="r")[:].sum()) if (done / "zarr.json").exists() else 0


def _epochs_done(out: Path) -> int:
    pointer = out / "checkpoint" / "last.json"
    return json.loads(pointer.read_text())["progress"]["epoch"] + 1 if pointer.exists() else 0


# stage -> (units of work done so far, units in all, what the rerun logs on resuming after ``done``)
PROGRESS: dict[str, tuple[Callable[[Path], int], int, Callable[[int], str]]] = {
    "embedding": (_shards_done, 10, lambda done: f"'already_done': {done}"),
    "pretraining": (_epochs_done, EPOCHS, lambda done: f"resuming after epoch {done - 1}"),
}


@pytest.mark.parametrize("name", sorted(PROGRESS))
def test_a_stage_killed_after_two_units_of_work_resumes_to_the_same_outputs(
    request: pytest.FixtureRequest, tmp_path: Path, kill_when: Callable, name: str
) -> None:
    stage: Stage = request.getfixturevalue(name)
    done_so_far, total, resumed = PROGRESS[name]
    kill_when(stage.start(tmp_path), lambda: done_so_far(tmp_path) >= 2)
    done = done_so_far(tmp_path)
    assert 2 <= done < total, f"not killed mid-run ({done} of {total})"
    assert resumed(done) in stage.complete(tmp_path)  # resumed, not restarted
    stage.same(tmp_path)
