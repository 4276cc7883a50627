"""Time limits and memory that scale with the rows a job processes and grow on each retry."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from adaptor import resources


def test_rows_come_from_the_manifests_footer_and_are_zero_before_it_exists(tmp_path: Path) -> None:
    manifest = tmp_path / "m.parquet"
    assert resources.manifest_rows(manifest) == 0
    pl.DataFrame({"id": [str(i) for i in range(1234)]}).write_parquet(manifest)
    assert resources.manifest_rows(manifest) == 1234


def test_limits_scale_with_rows_and_double_on_each_retry() -> None:
    # MIMIC-CXR's 377,110 images in 4 parts at 20 rows/s: 78.6 minutes of work plus the margin.
    assert resources.embed_runtime(377_110, 4, attempt=1) == 94
    assert resources.embed_runtime(377_110, 4, attempt=2) == 188
    assert resources.embed_runtime(0, 4, attempt=1) == resources.BASE_MINUTES
    # The paper's recipe: 187,000 pairs x 50 epochs at 100 pairs/s.
    assert resources.pretrain_runtime(187_000, 50, attempt=1) == 15 + 1559
    assert resources.memory_mb(8000, attempt=3) == 32000
