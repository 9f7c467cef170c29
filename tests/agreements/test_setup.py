"""The guided agreement setup: from nothing to an active agreement, every step a form, Cancel
saves nothing, the checklist says what is missing, "Continue" resumes where the administrator
was, and only administrators of the organization get in."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agreements.models import Agreement, AgreementStatus, Participation, Physician
from indicators.models import IndicatorDefinition, IndicatorTemplate
from savings.models import SavingsOpportunity
from tests import factories as f
from tests.agreements.test_access import PDF

B = "/o/riverside"
TERM = {"term_start": "2025-01-01", "term_end": "2026-12-31"}
FMV = {
    "valuator": "Valuation Partners LLC",
    "issue_date": "2024-11-01",
    "effective_start": "2025-01-01",
    "effective_end": "2026-12-31",
    "total_max_annual": "800000.00",
    "fixed_mode": "hourly",
    "fixed_hours": "1600",
    "hourly_rate": "250.00",
    "max_incentive": "400000.00",
    "rate_p25": "180.00",
    "rate_p50": "220.00",
    "rate_p75": "260.00",
    "rate_p90": "310.00",
}


def _create(world, kind: str = "co_management") -> Agreement:  # type: ignore[no-untyped-def]
    with world.scope():
        practice = f.PracticeFactory(organization=world.org, name="Ortho Partners")
    client = world.client("administrator")
    response = client.post(
        f"{B}/agreements/new/",
        {
            "kind": kind,
            "name": "Joint care",
            "practice": practice.pk,
            "service_line": "orthopedics",
            **TERM,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with world.scope():
        return Agreement.objects.get(name="Joint care")


def _step(agreement: Agreement, key: str = "") -> str:
    return f"{B}/agreements/{agreement.pk}/setup/{key + '/' if key else ''}"


def _policies(kind: str) -> dict[str, str]:
    common = {
        "hours_shortfall_policy": "hold",
        "tier_mode": "step",
        "small_denominator_policy": "redistribute",
        "distribution_method": "per_capita",
        "physician_share_pct": "50",
        "volume_cap_scope": "all_payors",
        "negative_opportunities": "net",
        "quality_gate": "all_or_nothing",
        "leaver_policy": "pro_rata",
        "reprice_baseline": "on",
        "severity_tolerance_pct": "10",
        "quality_tolerance_pct": "10",
    }
    if kind == "co_management":
        return {**common, "annual_fixed_fee": "400000.00", "incentive_pool": "400000.00"}
    return {**common, "admin_fee_monthly": "3000.00", "distribution_cap": "150000.00"}


def test_a_co_management_agreement_goes_from_nothing_to_active_through_the_steps(world):
    agreement = _create(world)
    client = world.client("administrator")
    overview = client.get(_step(agreement))
    assert overview.status_code == 200
    page = overview.content.decode()
    assert "Add the FMV opinion." in page and "Add the participating physicians." in page
    assert client.post(_step(agreement, "fmv"), FMV)["Location"] == _step(agreement, "fmv")
    response = client.post(_step(agreement, "policies"), _policies("co_management"))
    assert response.status_code == 302, response.content.decode()[:3000]
    duty = {"name": "Quality review", "required_monthly_hours": "100", "max_monthly_hours": "160"}
    assert client.post(_step(agreement, "duties"), duty).status_code == 302
    with world.scope():
        templates = list(IndicatorTemplate.objects.order_by("name")[:2])
    for template, weight in zip(templates, ("60", "40"), strict=True):
        response = client.post(
            _step(agreement, "indicators"), {"template": template.pk, "weight": weight}
        )
        assert response.status_code == 302, response.content.decode()[:3000]
    response = client.post(
        _step(agreement, "physicians"),
        {"npi": "1000000012", "first_name": "Cy", "last_name": "Chen", "join_date": "2025-01-01"},
    )
    assert response.status_code == 302
    response = client.post(
        _step(agreement, "execute"), {"executed_on": "2024-12-01", "signatories": "CEO\nDr Chen"}
    )
    assert response.status_code == 302
    with world.scope():
        agreement.refresh_from_db()
        assert agreement.status == AgreementStatus.EXECUTED
    assert client.post(_step(agreement, "execute")).status_code == 302
    with world.scope():
        agreement.refresh_from_db()
        assert agreement.status == AgreementStatus.ACTIVE
        assert IndicatorDefinition.objects.filter(agreement=agreement).count() == 2
    done = client.get(_step(agreement)).content.decode()
    assert "The agreement is active." in done


def test_a_shared_savings_agreement_has_the_opportunities_step_and_no_duties(world):
    agreement = _create(world, "shared_savings")
    client = world.client("administrator")
    page = client.get(_step(agreement)).content.decode()
    assert "Savings opportunities" in page and "Management duties" not in page
    assert client.get(_step(agreement, "duties")).status_code == 404
    response = client.post(
        _step(agreement, "opportunities"),
        {
            "name": "Closure devices",
            "case_types": "CATH1, CATH2",
            "item_codes": "VCD-1",
            "savings_target": "150000.00",
            "base_year": "2024",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    with world.scope():
        opportunity = SavingsOpportunity.objects.get(agreement=agreement)
        assert opportunity.identified_at_signing and opportunity.case_types == ["CATH1", "CATH2"]
    checklist = client.get(_step(agreement)).content.decode()
    assert "Add at least one savings opportunity." not in checklist


def test_cancel_on_a_form_step_goes_back_to_the_checklist_and_saves_nothing(world):
    agreement = _create(world)
    client = world.client("administrator")
    page = client.get(_step(agreement, "policies")).content.decode()
    cancel = f'<a class="btn secondary" href="{_step(agreement)}">Cancel</a>'
    assert cancel in page
    # Before the fix, Cancel pointed at the next step; it must never point onward.
    assert f'href="{_step(agreement, "duties")}">Cancel' not in page
    assert client.get(_step(agreement)).status_code == 200
    with world.scope():
        terms = agreement.terms.get()
        assert terms.annual_fixed_fee is None and terms.incentive_pool is None


def test_continue_resumes_at_the_step_the_administrator_last_opened(world):
    agreement = _create(world)
    client = world.client("administrator")
    first = client.get(_step(agreement)).content.decode()
    # Nothing opened yet: the first step still missing something (the FMV opinion).
    assert f'href="{_step(agreement, "fmv")}">Continue: FMV opinion' in first
    client.get(_step(agreement, "physicians"))
    again = client.get(_step(agreement)).content.decode()
    assert f'href="{_step(agreement, "physicians")}">Continue: Participating physicians' in again
    # The place is the session's: a new sign-in starts at the first step still missing.
    other = world.client("administrator")
    assert "Continue: FMV opinion" in other.get(_step(agreement)).content.decode()


def test_a_participant_and_a_new_physician_are_saved_together_or_not_at_all(world):
    agreement = _create(world)
    client = world.client("administrator")
    response = client.post(
        _step(agreement, "physicians"),
        {"npi": "1000000020", "first_name": "Di", "last_name": "Diaz", "join_date": "2030-01-01"},
    )
    assert response.status_code == 400
    assert "The join date must fall within the agreement&#x27;s term." in response.content.decode()
    with world.scope():
        assert not Physician.objects.filter(npi="1000000020").exists()
        assert not Participation.objects.filter(agreement=agreement).exists()
    nobody = client.post(_step(agreement, "physicians"), {"join_date": "2025-01-01"})
    assert nobody.status_code == 400
    assert "Choose a physician, or enter a new physician" in nobody.content.decode()
    existing = client.post(
        _step(agreement, "physicians"),
        {"physician": world.physician.pk, "join_date": "2025-02-01"},
    )
    assert existing["Location"] == _step(agreement, "physicians")
    with world.scope():
        assert Participation.objects.get(agreement=agreement).physician == world.physician


def test_activation_refused_by_the_service_says_why_in_plain_words(world):
    agreement = _create(world)
    client = world.client("administrator")
    one_year = {**FMV, "effective_end": "2025-12-31"}
    client.post(_step(agreement, "fmv"), one_year)
    client.post(_step(agreement, "execute"), {"executed_on": "2024-12-01", "signatories": "CEO"})
    refused = client.post(_step(agreement, "execute"))
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "The agreement cannot be activated yet" in page
    assert "No FMV opinion covers programme year 2 (Jan 1, 2026 – Dec 31, 2026)." in page
    with world.scope():
        agreement.refresh_from_db()
        assert agreement.status == AgreementStatus.EXECUTED


def test_signing_without_a_date_is_refused_by_field_and_changes_nothing(world):
    agreement = _create(world)
    response = world.client("administrator").post(
        _step(agreement, "execute"), {"signatories": "CEO"}
    )
    assert response.status_code == 400
    with world.scope():
        agreement.refresh_from_db()
        assert agreement.status == AgreementStatus.DRAFT


def test_a_document_is_uploaded_from_its_step(world):
    agreement = _create(world)
    response = world.client("administrator").post(
        _step(agreement, "documents"),
        {
            "kind": "signed_agreement",
            "title": "Signed agreement",
            "file": SimpleUploadedFile("signed.pdf", PDF, content_type="application/pdf"),
        },
    )
    assert response["Location"] == _step(agreement, "documents")
    with world.scope():
        assert agreement.documents.get().title == "Signed agreement"


@pytest.mark.parametrize("role", ["administrator", "executive", "counsel", "ceo", "physician"])
@pytest.mark.parametrize("key", ["", "fmv", "physicians", "execute"])
def test_only_administrators_open_the_setup(world, role, key):
    agreement = _create(world)
    expected = 200 if role == "administrator" else 403
    assert world.client(role).get(_step(agreement, key)).status_code == expected
    assert world.client("outsider").get(_step(agreement, key)).status_code == 404


def test_another_organizations_administrator_cannot_write_through_a_step(world):
    agreement = _create(world)
    response = world.client("outsider").post(
        _step(agreement, "physicians"),
        {"physician": world.physician.pk, "join_date": "2025-01-01"},
    )
    assert response.status_code == 404
    with world.scope():
        assert not Participation.objects.filter(agreement=agreement).exists()
        assert agreement.status == AgreementStatus.DRAFT
        assert agreement.terms.get().annual_fixed_fee is None


def test_the_work_queue_names_the_same_next_step_as_the_checklist(world):
    agreement = _create(world)
    client = world.client("administrator")
    page = client.get(f"{B}/workspace/").content.decode()
    assert f'href="{_step(agreement, "fmv")}">FMV opinion' in page
    assert "fmv opinion, fees and policies, management duties" in page
    client.post(_step(agreement, "fmv"), FMV)
    again = client.get(f"{B}/workspace/").content.decode()
    assert f'href="{_step(agreement, "policies")}">Fees and policies' in again
