"""Radiology report sections, as the MIMIC-CXR maintainers' section parser reads them, and the MGCA
text cleaning used for pre-training.

The reference behaviour is MIT-LCP's ``section_parser.py`` (mimic-cxr repository): a header is a
line that starts with an upper-case name and a colon; text before the first header is the
preamble; names are normalised (COMPARISONS -> comparison, FINDINGS AND IMPRESSION -> impression,
the misspellings it found in the 227,835 reports); empty findings / impression sections are dropped;
the last occurrence of a section wins. Departures, each because real reports need it: a header may
have spaces before its colon, and a mixed-case header (``Findings :``) counts when its name is one
the table knows, so that ordinary sentences with a colon never start a section; ADDENDUM and WET
READ sections are never report text, not even for the last-paragraph fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Section names as written (lower case, single spaces) -> the normalised name. The frequent
# variants and the one-off misspellings the official parser lists.
SECTION_NAMES = {
    **{name: name for name in ("preamble", "impression", "comparison", "indication", "findings")},
    **{name: name for name in ("examination", "technique", "history", "notification", "addendum")},
    **{name: name for name in ("recommendations", "date", "comment")},
    "comparisons": "comparison",
    "clinical history": "history",
    "reason for examination": "indication",
    "reason for exam": "indication",
    "clinical information": "history",
    "exam": "examination",
    "conclusion": "impression",
    "clinical indication": "indication",
    "chest, two views": "findings",
    "recommendation(s)": "recommendations",
    "recommendation": "recommendations",
    "type of examination": "examination",
    "reference exam": "comparison",
    "patient history": "history",
    "comparison exam": "comparison",
    "findings and impression": "impression",
    "wet read": "wet read",
    "wetread": "wet read",
    "comparison film": "comparison",
    "findings/impression": "impression",
    "findings/ impression": "impression",
    "pfi": "history",
    **dict.fromkeys(
        ("impresson", "imprression", "imoression", "impressoin", "imprssion", "impresion"), "impression"
    ),
    **dict.fromkeys(("imperssion", "mpression", "impession"), "impression"),
    **dict.fromkeys(("finding", "findins", "findindgs", "findgings", "findngs", "findnings"), "findings"),
    **dict.fromkeys(("finidngs", "reference findings"), "findings"),
    "idication": "indication",
    **dict.fromkeys(("comparision", "comparsion", "comparrison", "comparisions"), "comparison"),
    **dict.fromkeys(("concusion", "coinclusion"), "impression"),  # conclusions, as CONCLUSION is
}
# For upper-case headers only, as the official parser: a name containing one of these is that section,
_MAIN_SECTIONS = ("impression", "findings", "history", "comparison", "addendum")
# and a name describing the whole study is findings ("CHEST, PA AND LATERAL:").
_STUDY_DESCRIPTION = re.compile(
    "chest|portable|pa and lateral|lateral and pa|ap and lateral|lateral and ap|frontal and|two views"
    "|frontal view|pa view|ap view|one view|lateral view|bone window|frontal upright"
    "|frontal semi-upright|ribs|pa and lat"
)
_HEADER = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ()/,&-]*?)[ \t]*:")
NOT_REPORT_TEXT = frozenset({"addendum", "wet read"})
FALLBACKS = ("reject", "last_paragraph")

_LIST_MARKER = re.compile(r"\s\d+\.\s|^\d+\.\s")
_WORD = re.compile(r"\w+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def section_name(written: str) -> str | None:
    """The normalised name of a header as written, or None when the line is not a header.

    An upper-case header is always one (the official rule); a mixed-case one only when the table
    knows its name, so that "Heart size: normal" inside the findings stays findings.
    """
    name = " ".join(written.lower().split())
    if name in SECTION_NAMES:
        return SECTION_NAMES[name]
    if written != written.upper():
        return None
    main = next((section for section in _MAIN_SECTIONS if section in name), None)
    if main:
        return main
    return "findings" if _STUDY_DESCRIPTION.search(name) else name


def split_sections(report: str) -> list[tuple[str, str]]:
    """(normalised name, text) for each section in order, the preamble first; empty findings and
    impression sections are left out (a report title such as ``CHEST, PA LATERAL:`` is one)."""
    sections: list[tuple[str, list[str]]] = [("preamble", [])]
    for line in report.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        header = _HEADER.match(line)
        name = section_name(header.group(1)) if header else None
        if header and name:
            sections.append((name, [line[header.end() :]]))
        else:
            sections[-1][1].append(line)
    texts = [(name, "\n".join(lines).strip()) for name, lines in sections]
    return [(name, text) for name, text in texts if text or name not in ("findings", "impression")]


def _last(sections: list[tuple[str, str]], name: str) -> str:
    return next((text for section, text in reversed(sections) if section == name), "")


def _last_paragraph(sections: list[tuple[str, str]]) -> str:
    """The official fallback: the final section's text after its first paragraph (the first is a
    title or a header's own line), from the final section that is report text."""
    usable = [text for name, text in sections if name not in NOT_REPORT_TEXT]
    paragraphs = _PARAGRAPH_BREAK.split(usable[-1]) if usable else []
    return "\n\n".join(paragraphs[1:]).strip()


@dataclass(frozen=True)
class ReportText:
    """A report's pre-training text, or why it has none (``reason``; ``text`` is then None)."""

    text: str | None
    reason: str | None = None
    source: str = ""


def report_text(report: str, fallback: str = "reject", min_tokens: int = 3) -> ReportText:
    """Impression + " " + findings, cleaned as MGCA does; a report with neither is rejected, or with
    ``fallback='last_paragraph'`` gives its last paragraph. Never raises on report content."""
    if fallback not in FALLBACKS:
        raise ValueError(f"report fallback must be one of {FALLBACKS}, got {fallback!r}")
    sections = split_sections(report)
    impression, findings = _last(sections, "impression"), _last(sections, "findings")
    source = "+".join(name for name, text in (("impression", impression), ("findings", findings)) if text)
    raw = f"{impression} {findings}".strip()
    if not raw:
        names = {name for name, text in sections if text} - {"preamble"}
        if names and names <= NOT_REPORT_TEXT:
            return ReportText(None, "only an addendum or wet read, no findings or impression")
        if fallback == "reject":
            return ReportText(None, "no findings or impression section")
        raw, source = _last_paragraph(sections), "last_paragraph"
        if not raw:
            return ReportText(None, "no findings, impression or last paragraph")
    cleaned = clean_report(raw, min_tokens)
    if cleaned is None:
        return ReportText(None, f"fewer than {min_tokens} tokens after cleaning")
    return ReportText(cleaned, None, source)


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
