import numpy as np

from adaptor.train.retrieval import recall_at_k


def test_recall_counts_only_each_querys_own_pair() -> None:
    rng = np.random.default_rng(0)
    text = rng.normal(size=(20, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    assert set(recall_at_k(text, text).values()) == {1.0}
    shifted = np.roll(text, 1, axis=0)  # every image matches the previous pair's report
    recalls = recall_at_k(shifted, text)
    assert recalls["image_to_text/R@1"] == 0.0 and recalls["text_to_image/R@1"] == 0.0
    half = text.copy()
    half[:10] = np.roll(text[:10], 1, axis=0)
    assert recall_at_k(half, text, ks=(1,))["image_to_text/R@1"] == 0.5
