"""The terms have one list of fields and one set of rules, the terms service's: the amendment
page and the API accept the same fields, refuse the same values with the same words, and
neither stores what the other refuses."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.utils import timezone

from agreements import models as am
from agreements.forms import AmendmentForm, TermsPolicyForm
from agreements.serializers import TermsSerializer
from agreements.services.terms import TERMS_FIELDS
from tests import factories as f

pytestmark = pytest.mark.django_db

API = "/api/v1/organizations/riverside"

BAD_VALUES = [
    ("physician_share_pct", "60"),
    ("physician_share_pct", "-1"),
    ("admin_fee_monthly", "-5.00"),
    ("distribution_cap", "-1.00"),
    ("min_savings_threshold_pct", "101"),
    ("severity_tolerance_pct", "150"),
    ("quality_tolerance_pct", "-2"),
]


def test_the_page_and_the_api_edit_the_services_terms_fields():
    assert set(TermsPolicyForm.Meta.fields) == set(TERMS_FIELDS)
    assert AmendmentForm.Meta.fields[:2] == ["effective_from", "reason"]
    assert set(TermsSerializer.Meta.fields) >= set(TERMS_FIELDS)


def _inline_errors(html: str, field: str) -> list[str]:
    block = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert block, f"no inline error for {field}"
    return [unescape(m).strip() for m in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)]


def test_page_and_api_refuse_the_same_terms_with_the_same_words(world):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    with world.scope():
        agreement = f.AgreementFactory(
            organization=world.org,
            kind=am.AgreementKind.SHARED_SAVINGS,
            term_end=today + dt.timedelta(days=800),
        )
        latest = f.TermsFactory(agreement=agreement)
        good = {name: getattr(latest, name) for name in TERMS_FIELDS}
    good = {k: "" if v is None else str(v) for k, v in good.items() if k != "reprice_baseline"}
    effective = (today + dt.timedelta(days=1)).isoformat()
    client = world.client("administrator")
    for field, value in BAD_VALUES:
        page = client.post(
            f"/o/riverside/agreements/{agreement.pk}/amendments/new/",
            {"effective_from": effective, "reason": "Revised", **good, field: value},
        )
        api = client.post(
            f"{API}/agreement-terms/",
            {
                "agreement": agreement.pk,
                "effective_from": effective,
                "reason": "Revised",
                field: value,
            },
            content_type="application/json",
        )
        assert (field, page.status_code, api.status_code) == (field, 400, 400)
        api_words = [e["message"] for e in api.json()["errors"] if e["field"] == field]
        assert api_words, (field, api.json())
        assert _inline_errors(page.content.decode(), field) == api_words, field
        with world.scope():
            assert agreement.terms.count() == 1, field
