from adaptor.data.reports import clean_report, extract_sections


def test_sections_are_split_on_upper_case_headers() -> None:
    report = "FINAL REPORT\n FINDINGS:\n Heart is enlarged.\n\n IMPRESSION:\n Cardiomegaly.\n"
    sections = extract_sections(report)
    assert sections["FINDINGS"] == "Heart is enlarged."
    assert sections["IMPRESSION"] == "Cardiomegaly."


def test_cleaning_follows_mgca() -> None:
    text = "1. Heart size is NORMAL. 2. No effusion.\nOk. Lungs clear, no pneumothorax."
    assert clean_report(text) == "heart size is normal no effusion lungs clear no pneumothorax"


def test_short_reports_are_dropped() -> None:
    assert clean_report("Normal.") is None
    assert clean_report("") is None
