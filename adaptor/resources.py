"""What a job asks its scheduler for besides GPUs: memory and a time limit, sized from the rows it
processes at rates measured on the demo, and doubled on each retry (``attempt``).

The rates are those of 2 CPU cores (``benchmarks/demo_wall_time.py`` on the demo, 2026-11-29): on a
GPU the jobs end well inside these limits, and a limit that is too short costs a retry, not a
result. Standard library (and pyarrow, imported when a manifest exists), so the Snakefile can
import it."""

from __future__ import annotations

import math
from pathlib import Path

# Rows per second one job processes, measured on the demo (one thread a job): EfficientNet-Lite0
# at 128 px embedded MIMIC's 3,927 images in 165 s (24/s), MiniLM its reports in 134 s (29/s);
# pooled pre-training ran 119 pairs/s. Paper-size encoders are slower per row on a CPU and far
# faster on a GPU; the limits below take the CPU rate and a floor.
EMBED_ROWS_PER_SECOND = 20.0
PRETRAIN_PAIRS_PER_SECOND = 100.0
BASE_MINUTES = 15


def manifest_rows(path: str | Path) -> int:
    """The rows of a manifest, from its Parquet footer; 0 before it exists (a dry run)."""
    if not Path(path).exists():
        return 0
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def _doubled(attempt: int) -> int:
    """1 on the first attempt, 2 on the second, 4 on the third."""
    return int(2 ** (attempt - 1))


def minutes(seconds: float, attempt: int) -> int:
    """A time limit in minutes: the work's seconds plus a start-up margin, doubled on each retry."""
    return math.ceil((BASE_MINUTES + seconds / 60) * _doubled(attempt))


def embed_runtime(rows: int, parts: int, attempt: int) -> int:
    """Minutes for one embedding job over its share of a manifest's rows."""
    return minutes(rows / parts / EMBED_ROWS_PER_SECOND, attempt)


def pretrain_runtime(pairs: int, epochs: int, attempt: int) -> int:
    """Minutes for pre-training every epoch over the manifest's pairs (early stopping ends sooner)."""
    return minutes(pairs * epochs / PRETRAIN_PAIRS_PER_SECOND, attempt)


def memory_mb(base_mb: int, attempt: int) -> int:
    """Memory in MB, doubled on each retry (a job killed for memory gets twice as much)."""
    return base_mb * _doubled(attempt)
