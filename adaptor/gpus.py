"""Which GPUs a job may use, without importing torch. The workflow counts them while it builds the
DAG, so a local run takes no more GPU jobs at once than there are GPUs; each GPU job then claims
its own (Snakemake limits how many run, not which GPU each takes), or runs on the CPU where there
is none.

Standard library only, so the Snakefile can import it."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from adaptor.errors import SettingsError

log = logging.getLogger(__name__)


def visible_ids(environ: MutableMapping[str, str] = os.environ, nvidia_smi: str | None = None) -> list[str]:
    """The GPUs a process started here would see: those ``CUDA_VISIBLE_DEVICES`` lists when it is set
    (as a scheduler sets it for its job), else every GPU ``nvidia-smi -L`` lists, else none."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = []
        for entry in (entry.strip() for entry in listed.split(",")):
            if not entry or entry.startswith("-"):  # CUDA stops at the first invalid entry
                break
            ids.append(entry)
        return ids
    command = nvidia_smi or shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        result = subprocess.run([command, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    return [str(index) for index, line in enumerate(result.stdout.splitlines()) if line.startswith("GPU ")]


def visible_gpus(environ: MutableMapping[str, str] = os.environ, nvidia_smi: str | None = None) -> int:
    """How many GPUs :func:`visible_ids` finds."""
    return len(visible_ids(environ, nvidia_smi))


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a")  # noqa: SIM115 (held open while the lock is held)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextmanager
def claimed_gpus(
    count: int,
    environ: MutableMapping[str, str] = os.environ,
    lock_dir: str | Path | None = None,
    wait_seconds: float = 3600.0,
) -> Iterator[list[str]]:
    """Claim ``count`` of the visible GPUs for this process alone (a lock file per GPU, released when
    the block ends or the process dies) and show the process only those, through
    ``CUDA_VISIBLE_DEVICES``, before torch starts CUDA. ``count`` 0 hides every GPU, and so does a
    machine without any: the job runs on the CPU (a workstation without a GPU runs the same DAG)."""
    ids = visible_ids(environ)
    if not ids and count:
        log.warning("asked for %d GPUs and none is visible: running on the CPU", count)
        count = 0
    if count > len(ids):
        raise SettingsError(
            f"this job asks for {count} GPUs and {len(ids)} are visible ({ids}); lower the config's gpus"
        )
    folder = Path(lock_dir or tempfile.gettempdir())
    deadline = time.monotonic() + wait_seconds
    with ExitStack() as held:
        claimed: list[str] = []
        while len(claimed) < count:
            for gpu in ids:
                if gpu not in claimed and len(claimed) < count:
                    handle = _try_lock(folder / f"adaptor-gpu-{gpu}.lock")
                    if handle is not None:
                        held.callback(handle.close)
                        claimed.append(gpu)
            if len(claimed) < count:
                if time.monotonic() > deadline:
                    raise SettingsError(f"waited {wait_seconds:.0f} s for {count} free GPUs of {ids}")
                time.sleep(1.0)
        environ["CUDA_VISIBLE_DEVICES"] = ",".join(claimed)
        yield claimed
