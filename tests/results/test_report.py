"""The report's sections as Markdown and as HTML pages: the published numbers beside ours with the
demo's caveat only on a demo run, and tables a browser reads (escaped, numbers aligned)."""

from __future__ import annotations

from html.parser import HTMLParser

import polars as pl

from adaptor.results import costs, published, report


class _Cells(HTMLParser):
    """The text of every table cell of a page, and whether every tag it opened was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.open: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("meta",):
            self.open.append(tag)
        self._in_cell = tag in ("td", "th")
        if self._in_cell:
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def _summary() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset": ["rsna"] * 2,
            "metric": ["auroc"] * 2,
            "method": ["adaptor", "adaptor"],
            "image_encoder": ["e", "e"],
            "text_encoder": ["<t>", "<t>"],
            "fraction": [0.01, 1.0],
            "mean": [0.8, 0.9],
            "std": [0.01, None],
            "seeds": [3, 1],
        }
    )


def test_the_published_section_says_a_demo_is_not_comparable_only_on_a_demo() -> None:
    comparison = published.beside_published(_summary())
    demo = report.published_section(comparison, demo=True)
    real = report.published_section(comparison, demo=False)
    assert published.NOT_COMPARABLE in demo.note and published.NOT_COMPARABLE not in real.note
    blocks = dict(demo.tables)
    assert list(blocks) == ["covidx, accuracy", "rsna, auroc", "rsna, dice_mgca", "siim, dice_mgca"]
    table = blocks["rsna, auroc"]
    assert table.columns[-3:] == ["1 %", "10 %", "100 %"]
    ours = table.row(0, named=True)
    assert (ours["source"], ours["1 %"], ours["10 %"], ours["100 %"]) == (
        published.THIS_RUN,
        "80.0 ± 1.0",
        None,
        "90.0",
    )
    mgca = table.filter(pl.col("method") == "MGCA (ViT-B/16)").row(0, named=True)
    assert (mgca["source"], mgca["1 %"], mgca["100 %"]) == (published.PUBLISHED, "89.1", "90.8")


def test_an_html_page_is_well_formed_and_escapes_every_value() -> None:
    section = report.Section(
        "Beside <the> numbers",
        "`dice_mgca` & friends\n\n**not comparable**",
        [("rsna, auroc", pl.DataFrame({"name": ["<script>"], "value": [0.25], "count": [12345]}))],
    )
    page = report.html_page(section)
    parser = _Cells()
    parser.feed(page)
    assert parser.open == [] and parser.cells == ["name", "value", "count", "<script>", "0.250", "12,345"]
    assert "<script>" not in page and "<p><code>dice_mgca</code> &amp; friends</p>" in page
    assert "<p><strong>not comparable</strong></p>" in page
    assert '<td class="number">0.250</td>' in page and '<td class="text">&lt;script&gt;</td>' in page


def test_markdown_holds_every_section_in_order() -> None:
    sections = {
        name: report.Section(name.title(), f"note {name}", [("", pl.DataFrame({"a": [1]}))])
        for name in report.MARKDOWN_ORDER
    }
    text = report.markdown(sections)
    positions = [text.index(f"## {name.title()}") for name in report.MARKDOWN_ORDER]
    assert positions == sorted(positions) and text.count("| a |") == len(report.MARKDOWN_ORDER)


def test_without_benchmark_files_the_cost_sections_say_so_instead_of_showing_zeros() -> None:
    wall = pl.DataFrame(schema={"stage": pl.String, "job": pl.String, "seconds": pl.Float64})
    pretraining = pl.DataFrame(
        {
            "image_encoder": ["e"],
            "text_encoder": ["t"],
            "mode": ["pooled"],
            "epochs_run": [3],
            "pretrain_seconds": [9.0],
        }
    )
    found = report.cost_sections(wall, costs.cache_dividend(wall, pretraining, "mimic"))
    for section in found.values():
        assert section.tables == [] and "unknown, not zero" in section.note
