"""Pages as their readers see them: terms, history, audit trail, the calculation and the
report show labels in words, formatted amounts and percentages, no key and no raw Decimal."""

from __future__ import annotations

import pytest
from django_scopes import scopes_disabled

from agreements.models import AgreementTerms
from tests.plain_words import problems, visible_text

pytestmark = pytest.mark.django_db


def _page(world, who, url):  # type: ignore[no-untyped-def]
    response = world.client(who).get(url)
    assert response.status_code == 200, url
    return visible_text(response.content.decode())


def test_terms_read_as_labels_money_and_percentages(world, recorded):
    with scopes_disabled():
        terms = AgreementTerms.objects.filter(agreement=recorded.run.agreement).first()
    text = " ".join(
        _page(world, "administrator", f"/o/{world.org.slug}/agreement-terms/{terms.pk}/").split()
    )
    assert problems(text) == []
    assert "Physicians' share (%)" in text and "pct" not in text
    assert "$400,000.00" in text and "400000.00" not in text.replace("$400,000.00", "")
    assert "True" not in text and "None" not in text


@pytest.mark.parametrize("who", ["administrator", "executive", "counsel", "auditor"])
def test_adjudication_pages_show_no_code_and_no_raw_decimal(world, recorded, who):
    o = world.org.slug
    urls = [
        f"/o/{o}/adjudication/runs/{recorded.run.pk}/",
        f"/o/{o}/adjudication/reports/{recorded.report.pk}/",
    ]
    for url in urls:
        assert problems(_page(world, who, url)) == [], url


def test_history_and_audit_trail_name_fields_and_events_in_words(world, recorded):
    o = world.org.slug
    agreement = recorded.run.agreement
    history = _page(world, "administrator", f"/o/{o}/history/agreement/{agreement.pk}/")
    assert problems(history) == []
    audit = _page(world, "auditor", f"/o/{o}/audit/")
    assert problems(audit) == []


def test_the_report_page_polls_while_its_pdf_is_rendered(world, recorded):
    from adjudication.models import AdjudicationReport

    with scopes_disabled():
        AdjudicationReport.objects.filter(pk=recorded.report.pk).update(pdf_sha256="")
    url = f"/o/{world.org.slug}/adjudication/reports/{recorded.report.pk}/"
    html = world.client("administrator").get(url).content.decode()
    assert 'hx-trigger="every 3s"' in html and "being rendered" in html
    with scopes_disabled():
        AdjudicationReport.objects.filter(pk=recorded.report.pk).update(pdf_sha256="ab" * 32)
    html = world.client("administrator").get(url).content.decode()
    assert 'hx-trigger="every 3s"' not in html
