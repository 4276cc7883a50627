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


def test_ignored_labels_add_nothing_to_the_loss_or_the_metric() -> None:
    """CheXpert's ``uncertain: ignore``: a NaN label is masked out of training and scoring. Class 0
    is learnable; class 1's known labels are learnable too, and its ignored ones are adversarial
    noise that would be learned if they counted (they are flipped before being hidden)."""
    rng = np.random.default_rng(2)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
        x = rng.normal(size=(n, 16)).astype(np.float32)
        x[:, :2] += 3.0 * y
        return x, y

    train, val, test = split(200), split(80), split(100)
    hidden = rng.random(len(train[1])) < 0.5
    flipped = train[1].copy()
    flipped[hidden, 1] = 1 - flipped[hidden, 1]
    ignored = train[1].copy()
    ignored[hidden, 1] = np.nan
    settings = HeadSettings(head="linear", lr=1e-2, max_epochs=40)
    masked = train_and_test("multilabel", ("a", "b"), (train[0], ignored), val, test, settings, 0)
    noisy = train_and_test("multilabel", ("a", "b"), (train[0], flipped), val, test, settings, 0)
    auroc = {
        name: classification_metrics("multilabel", test[1], run["test_scores"], ("a", "b"))["auroc/b"]
        for name, run in (("masked", masked), ("noisy", noisy))
    }
    assert auroc["masked"] > 0.9 and auroc["masked"] > auroc["noisy"] + 0.05
    test_with_ignored = test[1].copy()
    test_with_ignored[:50, 1] = np.nan
    scores = masked["test_scores"]
    assert (
        classification_metrics("multilabel", test_with_ignored, scores, ("a", "b"))["auroc/b"]
        == (classification_metrics("binary", test[1][50:, 1:], scores[50:, 1:], ("b",))["auroc"])
    )
