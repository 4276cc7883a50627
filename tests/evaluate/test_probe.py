import numpy as np

from adaptor.evaluate.metrics import classification_metrics
from adaptor.evaluate.probe import HeadSettings, train_and_test


def _split(rng: np.random.Generator, n: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, classes, size=n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[np.arange(n), y] += 3.0
    return x, y[:, None].astype(np.float32)


def test_separable_data_is_learned_and_chance_is_not_flattered() -> None:
    rng = np.random.default_rng(0)
    train, val, test = (_split(rng, n, 3) for n in (150, 60, 90))
    for head in ("linear", "mlp"):
        result = train_and_test(
            "multiclass",
            ("a", "b", "c"),
            train,
            val,
            test,
            HeadSettings(head=head, lr=1e-2, max_epochs=60),
            0,
        )
        assert (
            classification_metrics("multiclass", test[1], result["test_scores"], ("a", "b", "c"))["accuracy"]
            > 0.85
        )
    noise = (rng.normal(size=(90, 16)).astype(np.float32), test[1])
    shuffled = train_and_test(
        "multiclass",
        ("a", "b", "c"),
        (train[0], rng.permutation(train[1])),
        val,
        noise,
        HeadSettings(max_epochs=20),
        0,
    )
    assert (
        classification_metrics("multiclass", test[1], shuffled["test_scores"], ("a", "b", "c"))["accuracy"]
        < 0.55
    )


def test_binary_head_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    train, val, test = (_split(rng, n, 2) for n in (80, 40, 40))
    runs = [
        train_and_test("binary", ("p",), train, val, test, HeadSettings(max_epochs=10), 3) for _ in range(2)
    ]
    assert np.array_equal(runs[0]["test_scores"], runs[1]["test_scores"])
    assert runs[0]["val_metric"] == runs[1]["val_metric"]
    assert classification_metrics("binary", test[1], runs[0]["test_scores"], ("p",))["auroc"] > 0.9
