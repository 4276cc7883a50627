"""Progress of long steps: a bar in a terminal, and done / total, rate and ETA lines in a log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
log = logging.getLogger(__name__)


def progress(
    items: Iterable[Item], total: int, what: str, unit: str = "items", every_s: float = 10.0
) -> Iterator[Item]:
    """Yield ``items``, each one of ``total``.

    In a terminal, a tqdm bar; otherwise (Snakemake's logs) a log line every ``every_s`` seconds and
    one at the end, with done / total, rate and ETA.
    """
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=what, unit=unit)
        return
    started = last = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s or done == total:
            last = now
            rate = done / max(now - started, 1e-9)
            eta = (total - done) / rate if rate else float("inf")
            log.info("%s: %d / %d %s, %.0f %s/s, ETA %.0f s", what, done, total, unit, rate, unit, eta)
