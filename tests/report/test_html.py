"""render_html: one self-contained, well-formed page with every row, escaped text and an SVG chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from report_factories import FLAGS, TINY, report_of, row_from_cells

from editing_service.report import render_html
from editing_service.report.budget import budget_curve

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}


class _Balance(HTMLParser):
    """Checks that every non-void tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


@pytest.fixture(scope="module")
def page() -> tuple[dict, str]:
    names = ("original", "shift", "shift_retrained", "random_ablation", "token_deletion", "oracle")
    rows = [row_from_cells(name, TINY, n_boot=20) for name in names]
    rows[0].description = "trained on <b>biased</b> data & more"
    curve = budget_curve([(2, ["blocks.0.out/1", "blocks.1.out/7"], 0.62, 0.80), (3, ["a/1", "a/2", "a/3"], 0.66, 0.91)],
                         base=0.60, oracle=0.90)
    report = report_of(rows, budget_curve=curve)
    return report, render_html(report)


def test_page_is_well_formed_html(page) -> None:
    _, html = page
    assert html.startswith("<!DOCTYPE html>")
    checker = _Balance()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == []


def test_page_is_self_contained(page) -> None:
    _, html = page
    for needle in ("<script", "<link", "src=", "@import", "url(", "<img"):
        assert needle not in html.lower(), needle
    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(charts) == 2  # the rows and the budget curve
    for chart in charts:
        ET.fromstring(chart)  # valid XML


def test_page_shows_every_row_and_section(page) -> None:
    report, html = page
    for row in report.rows:
        assert f"<h3>{row.name}</h3>" in html
        assert f"<b>{row.name}</b>" in html
    for heading in ("Findings", "Rows", "Budget curve", "Flags", "Cells per row", "Provenance", "Limitations",
                    "Warnings"):
        assert f"<h2>{heading}</h2>" in html
    assert "ana" in html and "fires on she/her" in html  # who and why
    assert "sentence-transformers/all-MiniLM-L6-v2" in html and "fca18329" in html


def test_text_from_data_is_escaped(page) -> None:
    report, html = page
    assert FLAGS[0]["label"] == "<script>alert(1)</script>"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "trained on &lt;b&gt;biased&lt;/b&gt; data &amp; more" in html
    assert "&#x27;validate&#x27;" in html  # the policy statement, quotes escaped too
