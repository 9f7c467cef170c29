"""The auditor role and the audit trail."""

from __future__ import annotations

from django.urls import reverse
from django_scopes import scopes_disabled

from comanage.core.audit import acting_as, event_record
from comanage.core.models import ApiToken, Membership, Role
from comanage.core.permissions import membership_can
from tests import factories as f


def test_the_auditor_role_holds_audit_view_and_nothing_that_changes_data(world):
    auditor = world.memberships["auditor"]
    assert auditor.role == Role.AUDITOR
    assert membership_can(auditor, "audit.view")
    for permission in (
        "agreement.edit",
        "report.approve",
        "report.authorise",
        "payment.record",
        "data.import",
        "org.manage",
    ):
        assert not membership_can(auditor, permission)


def test_the_audit_trail_lists_only_the_auditors_organization(world):
    event_record(
        organization=world.org,
        name="report.approved",
        actor=world.users["counsel"],
        summary="Riverside FY2025 report approved",
    )
    event_record(
        organization=world.other_org,
        name="payment.recorded",
        actor=world.outsider,
        summary="Lakeview FY2025 payment recorded",
    )
    response = world.client("auditor").get(reverse("audit_trail", args=["riverside"]))
    assert response.status_code == 200
    assert b"Riverside FY2025 report approved" in response.content
    assert b"Lakeview" not in response.content
    # And the other organization's trail does not exist for this auditor.
    assert world.client("auditor").get(reverse("audit_trail", args=["lakeview"])).status_code == 404


def test_roles_without_audit_view_are_refused_the_trail(world):
    assert (
        world.client("physician").get(reverse("audit_trail", args=["riverside"])).status_code == 403
    )
    assert (
        world.client("anonymous").get(reverse("audit_trail", args=["riverside"])).status_code == 302
    )


def test_history_records_the_acting_user_outside_a_request(world):
    admin = world.users["administrator"]
    newcomer = f.UserFactory(email="newcomer@riverside.example")
    with acting_as(admin), scopes_disabled():
        membership = Membership.objects.create(
            organization=world.org, user=newcomer, role=Role.EXECUTIVE
        )
        membership.role = Role.AUDITOR
        membership.save()
    with scopes_disabled():
        records = list(membership.history.order_by("history_date"))
    assert [r.history_type for r in records] == ["+", "~"]
    assert all(r.history_user == admin for r in records)


def test_history_records_the_user_of_a_request(world):
    user = world.users["executive"]
    response = world.client("executive").post(reverse("api_tokens"), {"name": "Reporting"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=user, name="Reporting")
    record = token.history.get()
    assert record.history_type == "+"
    assert record.history_user == user
