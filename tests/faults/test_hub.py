"""Hub models known by the commit they resolved to and their files' hashes, never by a branch name;
a repository's own code runs only at a commit the config pins. Offline: a Hugging Face cache laid
out as a download leaves it."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from adaptor.encoders import weights as weight_sources
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder
from adaptor.errors import CacheMismatch, ConfigError, WeightsNotFound
from adaptor.evaluate.zeroshot import same_text_encoder

FIRST, SECOND = "a" * 40, "b" * 40
TINY = EncoderSpec("tiny", "text", "transformers", "org/tiny", pooling="mean")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network: the Hugging Face client reads only this cache, as a machine without internet."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def _publish(hub: Path, repo: str, commit: str, model: Path) -> None:
    """``model`` as the cache holds ``repo`` after a download, with ``main`` at ``commit``."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    shutil.copytree(model, folder / "snapshots" / commit)


def _main_moves(hub: Path, tiny_bert: Path, tmp_path: Path) -> tuple[LoadedEncoder, LoadedEncoder]:
    """The encoder loaded before and after upstream publishes new weights on ``main``."""
    _publish(hub, "org/tiny", FIRST, tiny_bert)
    before = load_encoder(TINY)
    torch.manual_seed(1)
    retrained = Path(shutil.copytree(tiny_bert, tmp_path / "retrained"))
    BertModel(BertConfig.from_pretrained(tiny_bert)).save_pretrained(retrained)
    _publish(hub, "org/tiny", SECOND, retrained)
    return before, load_encoder(TINY)


def test_an_unreachable_hub_names_the_encoder(hub: Path) -> None:
    spec = EncoderSpec("cxrbert", "text", "transformers", "microsoft/BiomedVLP-CXR-BERT-general")
    with pytest.raises(WeightsNotFound, match=r"encoder 'cxrbert'.*cannot fetch.*local model directory"):
        load_encoder(spec)


def test_new_upstream_weights_give_a_new_identity(hub: Path, tiny_bert: Path, tmp_path: Path) -> None:
    before, after = _main_moves(hub, tiny_bert, tmp_path)
    assert (before.hub_commit, before.weights_sha256) == (FIRST, weight_sources.sha256(tiny_bert))
    assert after.hub_commit == SECOND and after.weights_sha256 != before.weights_sha256
    assert after.key() != before.key()
    pinned = load_encoder(EncoderSpec("tiny", "text", "transformers", "org/tiny", revision=FIRST))
    assert (pinned.hub_commit, pinned.weights_sha256) == (FIRST, before.weights_sha256)


def test_zero_shot_refuses_a_text_encoder_the_adaptor_was_not_trained_with(
    hub: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    before, after = _main_moves(hub, tiny_bert, tmp_path)
    same_text_encoder(before, before.identity(), "adaptors/x")
    with pytest.raises(CacheMismatch, match=r"adaptors/x: trained on text embeddings.*hub_commit"):
        same_text_encoder(after, before.identity(), "adaptors/x")


def test_remote_code_needs_a_pinned_commit() -> None:
    with pytest.raises(ConfigError, match=r"encoders.text.cxr: trust_remote_code.*40-character commit"):
        EncoderSpec("cxr", "text", "transformers", "org/cxr", trust_remote_code=True)
    with pytest.raises(ConfigError, match="40-character commit"):
        EncoderSpec("cxr", "text", "transformers", "org/cxr", trust_remote_code=True, revision="v1.1")
    EncoderSpec("cxr", "text", "transformers", "org/cxr", trust_remote_code=True, revision="0" * 40)
