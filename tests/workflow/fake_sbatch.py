"""A stand-in for a batch scheduler, for Snakemake's cluster-generic executor in the tests.

``fake_sbatch.py submit <jobscript>`` starts the job script as a detached background process and
prints its job id; ``fake_sbatch.py status <id>`` prints running, success or failed from the exit
status file the job leaves in ``$FAKE_SCHEDULER_STATE``. Each job is a separate process, as on a
cluster, sharing only the filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path


def main() -> None:
    state = Path(os.environ["FAKE_SCHEDULER_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    if sys.argv[1] == "submit":
        job = uuid.uuid4().hex[:12]
        status = state / f"{job}.rc"
        script = 'bash "$0" > "$1.out" 2>&1; echo $? > "$1.part" && mv "$1.part" "$1"'
        subprocess.Popen(
            ["bash", "-c", script, sys.argv[-1], str(status)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(job)
        return
    status = state / f"{sys.argv[2]}.rc"
    if not status.exists():
        print("running")
    else:
        print("success" if status.read_text().strip() == "0" else "failed")


if __name__ == "__main__":
    main()
