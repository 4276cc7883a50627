"""A cache damaged after it was written (bytes flipped, files deleted, a shard index broken) is an
error naming the file and its rows, wherever it is read; ``cache verify`` finds it beforehand."""

from pathlib import Path

import numpy as np
import pytest

from adaptor import cli
from adaptor.cache import store
from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.errors import CacheDamaged

IDS = [f"s{i}" for i in range(80)]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """80 rows in 5 shards of 16, with tokens; values that are never zero."""
    rng = np.random.default_rng(0)
    layout = Layout(dim=8, shard_rows=16, chunk_rows=8, dtype="float32", token_shape=(4, 8))
    embeddings = rng.normal(size=(80, 8)) + 3
    tokens = rng.normal(size=(80, 4, 8)) + 3
    write_all(tmp_path / "c.zarr", IDS, embeddings, {"encoder": "x"}, layout, tokens)
    return tmp_path / "c.zarr"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["cache", "verify", str(path)])
    return exit_code.value.code, capsys.readouterr().out


def test_a_whole_cache_verifies(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["cache", "verify", str(cache)])
    assert capsys.readouterr().out.strip() == f"{cache}: whole"
    assert len(open_cache(cache).ids) == 80


def test_a_flipped_byte_in_an_embeddings_chunk_is_named(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _flip(cache / "embeddings" / "c" / "2" / "0", 40)
    with pytest.raises(CacheDamaged, match=r"embeddings/c/2/0: embeddings rows 32-47 are corrupt"):
        open_cache(cache)
    code, out = _verify(cache, capsys)
    assert code == 1 and len(out.splitlines()) == 1
    assert "embeddings/c/2/0: embeddings rows 32-47 are corrupt (Stored and computed checksum" in out


def test_deleted_shard_files_are_named_not_read_as_zeros(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for shard in (1, 3, 4):
        (cache / "embeddings" / "c" / str(shard) / "0").unlink()
    with pytest.raises(
        CacheDamaged, match=r"embeddings/c/1/0: embeddings rows 16-31 are missing.*3 shard files"
    ):
        open_cache(cache)
    code, out = _verify(cache, capsys)
    assert code == 1 and len(out.splitlines()) == 3 and "rows 64-79 are missing" in out


def test_a_corrupt_shard_index_is_named(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = cache / "embeddings" / "c" / "0" / "0"
    _flip(shard, shard.stat().st_size - 6)  # the index sits at the end of the shard
    with pytest.raises(CacheDamaged, match=r"embeddings/c/0/0: embeddings rows 0-15 are corrupt"):
        open_cache(cache)
    assert _verify(cache, capsys)[0] == 1


def test_damaged_tokens_are_named_when_read(cache: Path) -> None:
    opened = open_cache(cache)  # the pooled vectors are fine; tokens are read on demand
    _flip(cache / "tokens" / "c" / "4" / "0" / "0", 64)
    assert opened.tokens(IDS[:16])[0].shape == (16, 4, 8)
    with pytest.raises(CacheDamaged, match=r"tokens/c/4/0/0: tokens rows 64-79 are corrupt"):
        opened.tokens(IDS[60:])


def test_a_missing_reasons_file_is_named(cache: Path) -> None:
    (cache / "reasons" / "c" / "0").unlink()
    with pytest.raises(CacheDamaged, match=r"reasons/c/0: reasons rows 0-15 are missing"):
        open_cache(cache)


def test_all_zero_shards_are_written_so_absence_always_means_damage(tmp_path: Path) -> None:
    write_all(tmp_path / "z.zarr", IDS[:32], np.zeros((32, 4)), {}, Layout(dim=4, shard_rows=16))
    assert store.verify(tmp_path / "z.zarr") == []
    assert (tmp_path / "z.zarr" / "embeddings" / "c" / "1" / "0").exists()
