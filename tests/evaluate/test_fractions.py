import numpy as np
import pandas as pd
import polars as pl

from adaptor.evaluate.fractions import draw, draw_mgca, subset_hash
from adaptor.evaluate.subsets import draw_subsets, split_ids


def _labels(n: int = 1000, positive: float = 0.2) -> np.ndarray:
    return (np.arange(n) % int(1 / positive) == 0).astype(float)[:, None]


def test_fractions_are_nested() -> None:
    subsets = draw(_labels(), [0.01, 0.1, 1.0], seed=0)
    assert set(subsets[0.01]) <= set(subsets[0.1]) <= set(subsets[1.0])
    assert [len(subsets[f]) for f in (0.01, 0.1, 1.0)] == [10, 100, 1000]


def test_fractions_are_stratified() -> None:
    labels = _labels()
    for seed in range(5):
        for fraction, index in draw(labels, [0.01, 0.1], seed).items():
            assert abs(labels[index, 0].mean() - 0.2) <= 1 / (fraction * 1000) + 1e-9


def test_fractions_are_deterministic_and_differ_by_seed() -> None:
    labels = _labels()
    assert np.array_equal(draw(labels, [0.1], 3)[0.1], draw(labels, [0.1], 3)[0.1])
    assert not np.array_equal(draw(labels, [0.1], 3)[0.1], draw(labels, [0.1], 4)[0.1])


def test_multilabel_and_small_fraction_keep_at_least_one() -> None:
    labels = np.random.default_rng(0).integers(0, 2, size=(50, 3)).astype(float)
    assert len(draw(labels, [0.001], 0)[0.001]) == 1


def test_subsets_come_from_the_train_split_only() -> None:
    manifest = pl.DataFrame(
        {
            "id": [str(i) for i in range(40)],
            "patient": [None] * 40,  # unknown patients: every sample its own group
            "labels": [[float(i % 2)] for i in range(40)],
            "split": ["train"] * 30 + ["val"] * 5 + ["test"] * 5,
        }
    )
    subsets = draw_subsets(manifest, [0.1, 1.0], [0, 1])
    assert set(subsets.filter(pl.col("split") == "train")["id"]) == {str(i) for i in range(30)}
    assert subsets.filter((pl.col("fraction") == 0.1) & (pl.col("seed") == 0)).height == 3
    assert split_ids(subsets, "val") == [str(i) for i in range(30, 35)]
    assert split_ids(subsets, "test") == [str(i) for i in range(35, 40)]
    assert subset_hash(["b", "a"]) == subset_hash(["a", "b"])


def test_strict_fractions_take_whole_patients_and_stay_nested() -> None:
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 300, size=1000).astype(str)
    labels = _labels()
    subsets = draw(labels, [0.01, 0.1, 1.0], seed=0, groups=patients)
    assert set(subsets[0.01]) <= set(subsets[0.1]) <= set(subsets[1.0]) and len(subsets[1.0]) == 1000
    for index in subsets.values():
        chosen = set(patients[index])
        assert all(patient in chosen for patient in patients[np.isin(patients, list(chosen))])
        outside = np.setdiff1d(np.arange(1000), index)
        assert not chosen & set(patients[outside])  # no patient on both sides
    assert abs(len(subsets[0.1]) - 100) <= 10


def test_mgca_protocol_equals_pandas_sample_with_random_state_42() -> None:
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(537)]})
    for fraction in (0.01, 0.1, 1.0):
        expected = sorted(frame.sample(frac=fraction, random_state=42).index)
        assert draw_mgca(len(frame), [fraction])[fraction].tolist() == expected
