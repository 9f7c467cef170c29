"""The read-heavy pages cache their figures under the organization's data version: the second
hit is cheaper, and a change shows at once."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def agreement(world):  # type: ignore[no-untyped-def]
    with world.scope():
        agreement = f.AgreementFactory(organization=world.org, name="Cardiology Co-Management")
        f.ProgrammeYearFactory(organization=world.org, agreement=agreement)
        f.ParticipationFactory(agreement=agreement, physician=world.physician)
        f.ParticipationFactory(agreement=agreement, physician=world.other_physician)
    return agreement


def _queries(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/o/riverside/dashboard/",
        "/o/riverside/dashboard/agreements/{pk}/",
        "/o/riverside/agreements/{pk}/",
    ],
)
def test_a_cached_page_makes_fewer_queries_on_the_second_hit(world, agreement, url):
    client = world.client("executive")
    url = url.format(pk=agreement.pk)
    first = _queries(client, url)
    assert _queries(client, url) < first


def test_the_dashboard_shows_a_changed_figure_right_after_the_change(world, agreement):
    client = world.client("executive")
    assert "Cardiology Co-Management" in client.get("/o/riverside/dashboard/").content.decode()
    with world.scope():
        agreement.name = "Cardiology Service Line"
        agreement.save()
    page = client.get("/o/riverside/dashboard/").content.decode()
    assert "Cardiology Service Line" in page
    assert "Cardiology Co-Management" not in page


def test_an_agreement_pages_change_shows_at_once(world, agreement):
    client = world.client("executive")
    client.get(f"/o/riverside/agreements/{agreement.pk}/")
    with world.scope():
        f.ProgrammeYearFactory(
            organization=world.org,
            agreement=agreement,
            number=2,
            start=dt.date(2026, 1, 1),
            end=dt.date(2026, 12, 31),
        )
    page = client.get(f"/o/riverside/agreements/{agreement.pk}/").content.decode()
    assert "Dec 31, 2026" in page


def test_a_physician_sees_only_their_own_participation_after_an_executive_filled_the_cache(
    world, agreement
):
    executive = world.client("executive").get(f"/o/riverside/agreements/{agreement.pk}/")
    assert "Baker" in executive.content.decode()
    page = world.client("physician").get(f"/o/riverside/agreements/{agreement.pk}/")
    assert page.status_code == 200
    assert "Adams" in page.content.decode()
    assert "Baker" not in page.content.decode()


def test_another_hospitals_cached_dashboard_is_never_served(world, agreement):
    world.client("executive").get("/o/riverside/dashboard/")
    page = world.client("outsider").get("/o/lakeview/dashboard/").content.decode()
    assert "Cardiology Co-Management" not in page


def test_the_executive_agreement_page_shows_a_change_at_once(world, agreement):
    client = world.client("executive")
    url = f"/o/riverside/dashboard/agreements/{agreement.pk}/"
    assert "Cardiology Co-Management" in client.get(url).content.decode()
    with world.scope():
        agreement.name = "Cardiology Service Line"
        agreement.save()
    page = client.get(url).content.decode()
    assert "Cardiology Service Line" in page
    assert "Cardiology Co-Management" not in page


def test_each_administrator_gets_a_lifecycle_form_with_their_own_csrf_token(world, agreement):
    """The agreement page is mostly a shared fragment; its forms are not: a token cached from
    one reader would be refused for (and leak to) the next."""
    from django.test import Client

    with world.scope():
        second = f.MembershipFactory(
            organization=world.org,
            role="administrator",
            user=f.UserFactory(email="second@riverside.example"),
        )
    url = f"/o/riverside/agreements/{agreement.pk}/"
    world.client("administrator").get(url)  # fills the cached fragments
    client = Client(enforce_csrf_checks=True)
    client.force_login(second.user)
    page = client.get(url).content.decode()
    action = f"/o/riverside/agreements/{agreement.pk}/transition/"
    form = re.search(rf'<form method="post" action="{action}">(.*?)</form>', page, re.S)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1)).group(1)
    response = client.post(action, {"csrfmiddlewaretoken": token, "to_status": "in_negotiation"})
    assert response.status_code == 302
    agreement.refresh_from_db()
    assert agreement.status == "in_negotiation"


def test_the_dashboards_search_and_pages_are_right_with_the_table_cached(world, agreement):
    with world.scope():
        for n in range(26):
            f.AgreementFactory(organization=world.org, name=f"Orthopaedics {n:02d}")
    client = world.client("executive")
    for _ in range(2):  # the second time, every table comes from the cache
        first = client.get("/o/riverside/dashboard/").content.decode()
        assert "Page 1 of 2" in first
        second = client.get("/o/riverside/dashboard/?page=2").content.decode()
        assert "Page 2 of 2" in second
        shown = [n for n in range(26) if f"Orthopaedics {n:02d}" in first + second]
        assert shown == list(range(26))
        found = client.get("/o/riverside/dashboard/?q=cardiology").content.decode()
        assert "Cardiology Co-Management" in found and "Orthopaedics" not in found
        none = client.get("/o/riverside/dashboard/?q=zzz").content.decode()
        assert "No agreement matches" in none
