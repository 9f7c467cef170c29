"""API writes go through the same services as the web forms.

The agreement's child view sets once listed DRF's mixins before the base class that calls the
services, so ``CreateModelMixin.perform_create`` (a bare ``serializer.save()``) won: a POST
answered 500 (NOT NULL ``organization_id``) and a PATCH stored what the form refuses.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django_scopes import scopes_disabled
from rest_framework import mixins

from agreements import models as am
from comanage.core.api import TenantViewSet
from tests import factories as f

pytestmark = pytest.mark.django_db

BASE = "/api/v1/organizations/riverside"


@pytest.fixture
def agreement(world):  # type: ignore[no-untyped-def]
    agreement = f.AgreementFactory(organization=world.org)  # term 2025-01-01 .. 2026-12-31
    f.TermsFactory(agreement=agreement)
    return agreement


def _fields(response) -> set[str | None]:  # type: ignore[no-untyped-def]
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("participations/", {"physician": "PHYSICIAN", "join_date": "2025-03-01"}),
        (
            "fmv-opinions/",
            {
                "valuator": "Valuation Partners LLC",
                "issue_date": "2024-11-01",
                "effective_start": "2025-01-01",
                "effective_end": "2026-12-31",
                "total_max_annual": "800000.00",
                "fixed_mode": "annual",
                "fixed_annual": "300000.00",
                "max_incentive": "400000.00",
            },
        ),
        (
            "duties/",
            {
                "name": "Quality committee",
                "required_monthly_hours": "10",
                "max_monthly_hours": "20",
            },
        ),
        ("committee-meetings/", {"held_on": "2025-02-03", "minutes": "Reviewed Q4."}),
        (
            "milestones/",
            {
                "name": "Kick-off",
                "owner": "Administrator",
                "due_date": "2025-02-01",
                "position": 0,
                "status": "not_started",
            },
        ),
    ],
)
def test_creating_an_agreements_child_row_goes_through_its_service(
    world, api, agreement, url, body
):
    body = {**body, "agreement": agreement.pk}
    if body.get("physician") == "PHYSICIAN":
        body["physician"] = world.physician.pk
    response = api("administrator").post(f"{BASE}/{url}", body, format="json")
    assert response.status_code == 201, response.content[:500]
    model = {
        "participations/": am.Participation,
        "fmv-opinions/": am.FMVOpinion,
        "duties/": am.ManagementDuty,
        "committee-meetings/": am.CommitteeMeeting,
        "milestones/": am.Milestone,
    }[url]
    with scopes_disabled():
        row = model.objects.get(pk=response.json()["id"])
    assert row.organization_id == world.org.pk
    assert row.agreement_id == agreement.pk


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"for_cause": True}, "termination_date"),
        ({"termination_date": "2025-06-30"}, "termination_reason"),
        ({"join_date": "2024-06-01"}, "join_date"),
        ({"ownership_pct": "150"}, "ownership_pct"),
    ],
)
def test_a_participation_patch_is_refused_as_the_form_refuses_it(
    world, api, agreement, patch, field
):
    participation = f.ParticipationFactory(agreement=agreement, physician=world.physician)
    response = api("administrator").patch(
        f"{BASE}/participations/{participation.pk}/", patch, format="json"
    )
    assert response.status_code == 400, response.content[:500]
    assert field in _fields(response)
    with scopes_disabled():
        participation.refresh_from_db()
    assert participation.join_date == dt.date(2025, 1, 1)
    assert participation.termination_date is None and not participation.for_cause


def test_a_duty_patch_below_the_required_hours_is_refused(world, api, agreement):
    duty = f.DutyFactory(agreement=agreement)
    response = api("administrator").patch(
        f"{BASE}/duties/{duty.pk}/", {"max_monthly_hours": "5"}, format="json"
    )
    assert response.status_code == 400
    assert "max_monthly_hours" in _fields(response)


def test_a_milestone_marked_done_gets_its_completion_date_from_the_service(world, api, agreement):
    with scopes_disabled():
        milestone = am.Milestone.objects.create(
            organization=world.org,
            agreement=agreement,
            name="Kick-off",
            position=0,
            owner="Administrator",
            due_date=dt.date(2025, 2, 1),
        )
    response = api("administrator").patch(
        f"{BASE}/milestones/{milestone.pk}/", {"status": "done"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["completed_on"] is not None


def test_a_view_set_whose_mixins_come_first_is_refused_at_import():
    class Ok(TenantViewSet):
        def perform_create(self, serializer):  # type: ignore[no-untyped-def]
            raise AssertionError

    class Fine(Ok, mixins.CreateModelMixin):
        pass

    with pytest.raises(TypeError, match="bypasses the service"):

        class Wrong(mixins.CreateModelMixin, Ok):
            pass

    with pytest.raises(TypeError, match="perform_update"):

        class NoService(mixins.UpdateModelMixin, TenantViewSet):
            pass
