"""Report section extraction and the MGCA text cleaning used for pre-training."""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*([A-Z][A-Z /]+):", re.MULTILINE)
_LIST_MARKER = re.compile(r"\s\d+\.\s|^\d+\.\s")
_WORD = re.compile(r"\w+")


def extract_sections(report: str) -> dict[str, str]:
    """Split a free-text report into its upper-case sections (``FINDINGS:``, ``IMPRESSION:``...)."""
    matches = list(_SECTION.finditer(report))
    sections: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(report)
        sections[match.group(1).strip()] = " ".join(report[match.end() : end].split())
    return sections


def clean_report(text: str, min_tokens: int = 3) -> str | None:
    """MGCA cleaning: split sentences on list markers and '.', keep lower-case ASCII words.

    Returns None when fewer than ``min_tokens`` tokens survive, so callers can reject the report
    explicitly instead of training on an empty string.
    """
    text = text.replace("\n", " ")
    sentences: list[str] = []
    for chunk in _LIST_MARKER.split(text):
        for sentence in chunk.split("."):
            tokens = [t for t in _WORD.findall(sentence.lower()) if t.isascii()]
            if len(tokens) > 1:
                sentences.append(" ".join(tokens))
    cleaned = " ".join(sentences)
    return cleaned if len(cleaned.split()) >= min_tokens else None
