"""On the seeded demo: the figures of the spec's examples show, only the physician's own data
show on their home, and the number of queries does not grow with the number of agreements."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from comanage.core.models import Organization, User
from comanage.workspaces.management.commands.scale_demo import scale_organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(seeded_demo, settings):  # type: ignore[no-untyped-def]
    """The demo's first hospital (tests/demo_database.py: loaded once per worker)."""
    settings.COMANAGE_REQUIRE_2FA = False
    with scopes_disabled():
        return Organization.objects.get(slug="riverside")


def _client(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:800]
    return len(ctx.captured_queries)


def test_queries_per_page_do_not_grow_with_agreements(demo, django_assert_max_num_queries):
    executive = _client("executive@riverside.example")
    admin = _client("administrator@riverside.example")
    physician = _client("physician@riverside.example")
    with scope(organization=demo):
        from agreements.models import Agreement

        co = Agreement.objects.get(kind="co_management")
        ss = Agreement.objects.get(kind="shared_savings")
    urls = {
        "dashboard": (executive, "/o/riverside/dashboard/"),
        "co": (executive, f"/o/riverside/dashboard/agreements/{co.pk}/"),
        "ss": (executive, f"/o/riverside/dashboard/agreements/{ss.pk}/"),
        "workspace": (admin, "/o/riverside/workspace/"),
        "physician": (physician, "/o/riverside/me/"),
    }
    with scope(organization=demo):
        assert Agreement.objects.count() == 2
    before = {name: _count(client, url) for name, (client, url) in urls.items()}
    assert scale_organization(organization=demo, agreements=6) == 4
    with scope(organization=demo):
        assert Agreement.objects.count() == 6
    for name, (client, url) in urls.items():
        with django_assert_max_num_queries(before[name]):
            response = client.get(url)
        assert response.status_code == 200, name
    page = executive.get("/o/riverside/dashboard/").content.decode()
    assert page.count("Orthopedic Service Line Co-Management") >= 3
    print("queries per page:", before)


def test_each_page_shows_the_demo_figures(demo):
    executive = _client("executive@riverside.example")
    page = executive.get("/o/riverside/dashboard/").content.decode()
    assert "$147,776.01" in page  # example A gross savings (2025)
    assert "$300,000.00" in page  # example C incentive earned (2025, redistribute)
    assert page.count("<svg") >= 3
    assert page.count('<details class="table-view">') >= 3
    csv = executive.get("/o/riverside/dashboard/agreements.csv").content.decode()
    assert "147776.01" in csv and "300000.00" in csv

    with scope(organization=demo):
        from agreements.models import Agreement

        co = Agreement.objects.get(kind="co_management")
    page = executive.get(f"/o/riverside/dashboard/agreements/{co.pk}/").content.decode()
    for name in ("Surgical site infection", "VTE prophylaxis", "30-day"):
        assert name in page
    assert "Fixed fee" in page and "$300,000.00" in page
    assert page.count("<svg") >= 6
    for table in ("years", "indicators", "fees"):
        assert (
            executive.get(f"/o/riverside/dashboard/agreements/{co.pk}/{table}.csv").status_code
            == 200
        )

    physician = _client("physician@riverside.example")
    page = physician.get("/o/riverside/me/").content.decode()
    assert "Welcome, Dr Adams" in page
    assert "Orthopedic Service Line Co-Management" in page
    assert "Baker" not in page and "Clark" not in page  # the other physicians
    csv = physician.get("/o/riverside/me/timelogs.csv")
    assert csv.status_code == 200 and b"Orthopedic" in csv.content

    page = (
        _client("administrator@riverside.example").get("/o/riverside/workspace/").content.decode()
    )
    assert "Time sheets awaiting approval" in page
    assert "no approved time log" in page
