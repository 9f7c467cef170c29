"""The report, statement and FMV PDFs as their readers see them: formatted amounts and
percentages, dates in one style, no stored code or raw Decimal (issue 20, plain words)."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

from adjudication import pdf
from tests.plain_words import problems, visible_text

pytestmark = pytest.mark.django_db


def _report_html(world, recorded):  # type: ignore[no-untyped-def]
    with world.scope():
        context = pdf.report_context(report=recorded.report)
        return render_to_string(
            "adjudication/pdf/report.html", {"c": context, "header": pdf._header(context)}
        )


def test_the_report_pdf_shows_no_code_and_no_raw_decimal(world, recorded):
    text = visible_text(_report_html(world, recorded))
    assert problems(text) == []
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text), "ISO dates in the report"


def test_the_incentive_formula_reads_as_amounts_and_a_percentage(world, recorded):
    text = " ".join(visible_text(_report_html(world, recorded)).split())
    # Example C: Σ(weight × payout) 6,375.00 of 8,500.00 counted = 75.00% of the pool.
    assert "× 6,375.00 ÷ 8,500.00 = $400,000.00 × 75.00% = $300,000.00" in text
    assert "8500.0000" not in text and "6375.00000000" not in text
    assert "25.00%" in text  # weights with two decimals


def test_the_statement_and_fmv_pdfs_show_no_code_and_no_raw_decimal(world, recorded):
    with world.scope():
        statements = pdf.statement_contexts(report=recorded.report)
        fmv = pdf.fmv_context(run=recorded.run)
        pages = [
            render_to_string("adjudication/pdf/statement.html", {"c": c, "header": pdf._header(c)})
            for c in statements
        ]
        pages.append(
            render_to_string("adjudication/pdf/fmv.html", {"c": fmv, "header": pdf._header(fmv)})
        )
    assert statements
    for html in pages:
        text = visible_text(html)
        assert problems(text) == []
        assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text)
