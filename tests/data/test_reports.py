"""Report sections as the MIMIC-CXR maintainers' parser reads them, and MGCA's cleaning.

Each report below is written in MIMIC-CXR's own style (a leading space on every line, `` \\n \\n``
between paragraphs) with one of the variants real reports have.
"""

import random

import pytest

from adaptor.data.reports import clean_report, report_text, section_name, split_sections

STANDARD = (
    "                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n"
    " INDICATION:  ___F with cough\n \n COMPARISON:  None.\n \n"
    " FINDINGS: \n \n The lungs are clear.  Heart size: normal.\n \n"
    " IMPRESSION: \n \n No acute cardiopulmonary process.\n"
)


def test_upper_case_sections_are_split_and_named() -> None:
    sections = dict(split_sections(STANDARD))
    assert sections["preamble"] == "FINAL REPORT"
    assert sections["examination"] == "CHEST (PA AND LAT)"
    assert sections["findings"] == "The lungs are clear.  Heart size: normal."  # a colon in a sentence
    assert sections["impression"] == "No acute cardiopulmonary process."
    assert (
        report_text(STANDARD).text == "no acute cardiopulmonary process the lungs are clear heart size normal"
    )


def test_mixed_case_headers_with_spaces_before_the_colon() -> None:
    report = (  # the example, verbatim
        "FINAL REPORT\n Findings :   Right lower lobe opacity ...\n\n"
        "  Impression:   Right lower lobe pneumonia."
    )
    parsed = report_text(report)
    assert parsed.text == "right lower lobe pneumonia right lower lobe opacity"
    assert parsed.source == "impression+findings"


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("IMPRESSON", "impression"),
        ("FINDNGS", "findings"),
        ("FINIDNGS", "findings"),
        ("COMPARISONS", "comparison"),
        ("FINDINGS AND IMPRESSION", "impression"),
        ("FINDINGS/IMPRESSION", "impression"),
        ("CONCLUSION", "impression"),
        ("CHEST, TWO VIEWS", "findings"),
        ("CHEST, PA AND LATERAL", "findings"),
        ("REASON FOR EXAM", "indication"),
        ("CLINICAL HISTORY", "history"),
        ("WET READ", "wet read"),
        ("Impression", "impression"),
        ("findings", "findings"),
        ("Heart size", None),  # mixed case and not a section: a sentence
        ("NG TUBE", "ng tube"),  # upper case: a header, as the official parser reads it
    ],
)
def test_section_names_are_normalised(written: str, name: str | None) -> None:
    assert section_name(written) == name


def test_misspelled_headers_still_give_findings_and_impression() -> None:
    report = " INDICATION:  Line.\n \n FINDNGS:  Catheter tip in the SVC.\n \n IMPRESSON:  No pneumothorax.\n"
    assert report_text(report).text == "no pneumothorax catheter tip in the svc"


def test_a_report_title_before_the_sections_is_dropped() -> None:
    report = (
        " CHEST, PA LATERAL:\n \n INDICATION:  Dyspnea.\n \n IMPRESSION:  Hyperinflated, no acute process.\n"
    )
    names = [name for name, _ in split_sections(report)]
    assert names == ["preamble", "indication", "impression"]  # the empty "findings" title is gone


def test_the_last_of_repeated_sections_wins() -> None:
    report = " FINDINGS:  Old text here.\n IMPRESSION:  The impression.\n FINDINGS:  New findings text.\n"
    assert report_text(report).text == "the impression new findings text"


def test_no_headers_is_rejected_or_gives_the_last_paragraph() -> None:
    report = (
        "                                 FINAL REPORT\n \n PA and lateral views were obtained.\n \n"
        " Stable mild cardiomegaly.  No edema.\n"
    )
    assert report_text(report) == report_text(report, "reject")
    assert (
        report_text(report).reason == "no findings or impression section" and report_text(report).text is None
    )
    fallback = report_text(report, "last_paragraph")
    assert fallback.source == "last_paragraph"
    assert fallback.text == "pa and lateral views were obtained stable mild cardiomegaly no edema"


def test_addendum_and_wet_read_are_not_report_text() -> None:
    addendum_only = (
        "                                 FINAL ADDENDUM\n ADDENDUM:\n"
        " Findings were discussed with Dr. ___ by telephone at 3:15 pm.\n"
    )
    for fallback in ("reject", "last_paragraph"):
        assert (
            report_text(addendum_only, fallback).reason
            == "only an addendum or wet read, no findings or impression"
        )
    wet = (
        " WET READ: ___ ___ 9:41 PM\n  Subtle left basilar opacity.\n"
        "                                 FINAL REPORT\n FINDINGS:  Patchy opacity.\n \n"
        " IMPRESSION:  Left lower lobe pneumonia.\n \n ADDENDUM:  Called to the floor at 10 pm.\n"
    )
    assert report_text(wet).text == "left lower lobe pneumonia patchy opacity"
    trailing_addendum = (
        " INDICATION:  Cough.\n \n No change since the prior study.\n \n ADDENDUM:  Discussed later.\n"
    )
    assert report_text(trailing_addendum, "last_paragraph").text == "no change since the prior study"


def test_windows_line_endings() -> None:
    report = " FINDINGS AND IMPRESSION:  Tube 4 cm above the carina.\r\n Bibasilar atelectasis.\r\n"
    assert report_text(report).text == "tube 4 cm above the carina bibasilar atelectasis"


def test_short_and_empty_reports_are_rejected_with_a_reason() -> None:
    assert report_text(" IMPRESSION:  Normal.\n").reason == "fewer than 3 tokens after cleaning"
    assert report_text("").reason == "no findings or impression section"
    assert report_text("", "last_paragraph").reason == "no findings, impression or last paragraph"


def test_no_text_makes_the_parser_raise() -> None:
    rng = random.Random(0)
    alphabet = "ABCFINDGSMPROaeiou :.,/()-\n\r\t _0123456789\x00é"
    for _ in range(2000):
        report = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        for fallback in ("reject", "last_paragraph"):
            parsed = report_text(report, fallback)
            assert (parsed.text is None) != (parsed.reason is None)


def test_cleaning_follows_mgca() -> None:
    text = "1. Heart size is NORMAL. 2. No effusion.\nOk. Lungs clear, no pneumothorax."
    assert clean_report(text) == "heart size is normal no effusion lungs clear no pneumothorax"
    assert clean_report("Normal.") is None
    assert clean_report("") is None
