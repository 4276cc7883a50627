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
EVERY_S = 10.0  # log lines at most this far apart while work goes on (Snakemake's logs)


class Progress:
    """Counts units of work done out of ``total``.

    In a terminal, a tqdm bar; otherwise (Snakemake's logs) a log line every ``every_s`` seconds of
    work and one at the end, with done / total, rate and ETA. A line is written when work is
    counted, so a step must count at least every ``every_s`` (a batch, not a shard).
    """

    def __init__(self, total: int, what: str, unit: str = "items", every_s: float = EVERY_S) -> None:
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        self.done = 0
        self.started = self.last = time.perf_counter()
        self.bar = tqdm(total=total, desc=what, unit=unit) if sys.stderr.isatty() else None

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            log.info(
                "%s: %d / %d %s, %.1f %s/s, ETA %.0f s",
                self.what,
                self.done,
                self.total,
                self.unit,
                rate,
                self.unit,
                eta,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress(
    items: Iterable[Item], total: int, what: str, unit: str = "items", every_s: float = EVERY_S
) -> Iterator[Item]:
    """Yield ``items``, each one of ``total``, counting each (see :class:`Progress`)."""
    counter = Progress(total, what, unit, every_s)
    try:
        for item in items:
            yield item
            counter.update()
    finally:
        counter.close()
