"""Counting the GPUs a job would see, and what a GPU job asks for locally and on a cluster."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adaptor.errors import SettingsError
from adaptor.gpus import claimed_gpus, visible_gpus


@pytest.mark.parametrize(
    ("listed", "count"),
    [("0", 1), ("0,1,3", 3), ("", 0), ("-1", 0), ("0,-1,2", 1), ("GPU-5f1c,GPU-77ab", 2)],
)
def test_cuda_visible_devices_decides_when_set(listed: str, count: int) -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": listed}, nvidia_smi="/nonexistent") == count


def test_nvidia_smi_lists_the_gpus_otherwise(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        '#!/bin/sh\necho "GPU 0: NVIDIA H200 (UUID: GPU-1)"\necho "GPU 1: NVIDIA H200 (UUID: GPU-2)"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert visible_gpus({}, nvidia_smi=str(fake)) == 2
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 9\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    assert visible_gpus({}, nvidia_smi=str(broken)) == 0
    assert visible_gpus({}, nvidia_smi=str(tmp_path / "missing")) == 0


def test_gpu_jobs_claim_different_gpus_and_see_only_theirs(tmp_path: Path) -> None:
    first_env = {"CUDA_VISIBLE_DEVICES": "2,3"}  # as a scheduler sets it: physical ids
    second_env = {"CUDA_VISIBLE_DEVICES": "2,3"}
    with claimed_gpus(1, first_env, tmp_path) as first, claimed_gpus(1, second_env, tmp_path) as second:
        assert (first, second) == (["2"], ["3"])
        assert (first_env["CUDA_VISIBLE_DEVICES"], second_env["CUDA_VISIBLE_DEVICES"]) == ("2", "3")
        with (
            pytest.raises(SettingsError, match="1 free GPUs of"),
            claimed_gpus(1, {"CUDA_VISIBLE_DEVICES": "2,3"}, tmp_path, wait_seconds=0.5),
        ):
            pass
    with claimed_gpus(2, {"CUDA_VISIBLE_DEVICES": "2,3"}, tmp_path) as both:  # released when the blocks end
        assert both == ["2", "3"]


def test_no_gpu_hides_them_all_and_too_many_is_an_error(tmp_path: Path) -> None:
    environ = {"CUDA_VISIBLE_DEVICES": "0"}
    with claimed_gpus(0, environ, tmp_path) as none:
        assert none == [] and environ["CUDA_VISIBLE_DEVICES"] == ""
    cpu_only = {"CUDA_VISIBLE_DEVICES": ""}  # a workstation without a GPU runs GPU jobs on its CPU
    with claimed_gpus(1, cpu_only, tmp_path) as none:
        assert none == [] and cpu_only["CUDA_VISIBLE_DEVICES"] == ""
    with (
        pytest.raises(SettingsError, match="asks for 2 GPUs and 1 are visible"),
        claimed_gpus(2, {"CUDA_VISIBLE_DEVICES": "0"}, tmp_path),
    ):
        pass
