"""The tenant check of every organization page: a change of membership is obeyed on the very
next request (the cached memberships are keyed on versions every such change bumps), and a 404
reveals nothing."""

from __future__ import annotations

import pickle
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from comanage.core.models import Role
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_deactivated_membership_is_404_on_the_next_request(world):
    client = world.client("executive")
    assert client.get("/o/riverside/dashboard/").status_code == 200
    with scopes_disabled():
        membership = world.memberships["executive"]
        membership.is_active = False
        membership.save()
    assert client.get("/o/riverside/dashboard/").status_code == 404


def test_a_deleted_membership_is_404_on_the_next_request(world):
    client = world.client("executive")
    assert client.get("/o/riverside/dashboard/").status_code == 200
    with scopes_disabled():
        world.memberships["executive"].delete()
    assert client.get("/o/riverside/dashboard/").status_code == 404


def test_a_demoted_member_loses_the_page_and_its_menu_entry_at_once(world):
    client = world.client("administrator")
    page = client.get("/o/riverside/dashboard/").content.decode()
    assert "Work queue" in page  # the cached menu of an administrator
    with scopes_disabled():
        membership = world.memberships["administrator"]
        membership.role = Role.EXECUTIVE
        membership.save()
    assert client.get("/o/riverside/workspace/").status_code == 403
    page = client.get("/o/riverside/dashboard/").content.decode()
    assert "Work queue" not in page and "Executive dashboard" in page


def test_an_outsiders_404_reads_like_an_unknown_organizations(world):
    outsider = world.client("outsider")
    foreign = outsider.get("/o/riverside/dashboard/")
    unknown = outsider.get("/o/no-such-place/dashboard/")
    assert foreign.status_code == unknown.status_code == 404
    assert "Riverside" not in foreign.content.decode()
    assert _without_csrf(foreign.content) == _without_csrf(unknown.content)


def _without_csrf(content: bytes) -> str:
    return re.sub(
        r'(csrf-token" content="|csrfmiddlewaretoken" value=")[^"]+', r"\1", content.decode()
    )


def _membership_reads(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum('FROM "core_membership"' in q["sql"] for q in ctx.captured_queries)


def test_the_tenant_check_reads_the_database_again_after_any_membership_change(world):
    client = world.client("executive")
    assert _membership_reads(client, "/o/riverside/dashboard/") == 1
    assert _membership_reads(client, "/o/riverside/dashboard/") == 0  # unchanged: cached
    with scopes_disabled():
        f.MembershipFactory(
            organization=world.other_org, user=world.users["executive"], role=Role.AUDITOR
        )
    assert _membership_reads(client, "/o/riverside/dashboard/") == 1
    # another user's change leaves this user's entry alone
    with scopes_disabled():
        membership = world.memberships["counsel"]
        membership.is_active = False
        membership.save()
    assert _membership_reads(client, "/o/riverside/dashboard/") == 0


def test_a_renamed_organization_shows_its_new_name_at_once(world):
    client = world.client("executive")
    assert "Riverside Medical Center" in client.get("/o/riverside/dashboard/").content.decode()
    world.org.name = "Riverside Health"
    world.org.save()
    page = client.get("/o/riverside/dashboard/").content.decode()
    assert "Riverside Health" in page and "Riverside Medical Center" not in page


def test_the_cached_memberships_never_hold_the_case_id_hashing_key(world):
    client = world.client("executive")
    client.get("/o/riverside/dashboard/")
    entry = cache.get(f"memberships:{world.users['executive'].pk}")
    assert entry is not None
    assert world.org.case_id_key.encode() not in pickle.dumps(entry)


def test_the_organization_switcher_lists_every_active_membership(world):
    with scopes_disabled():
        f.MembershipFactory(
            organization=world.other_org, user=world.users["executive"], role=Role.AUDITOR
        )
    page = world.client("executive").get("/o/riverside/dashboard/").content.decode()
    assert 'id="org-switcher"' in page
    assert "Lakeview Health" in page and "Riverside Medical Center" in page


def test_the_api_obeys_a_membership_change_on_the_next_request_and_reads_no_membership(world):
    """The API's tenant check answers from the same cached entry as the pages: no query for
    the membership once warm, and a deactivated or demoted membership is obeyed at once."""
    from tests.api.conftest import token_client

    with scopes_disabled():
        second = f.MembershipFactory(
            organization=world.org, user=world.outsider, role=Role.ADMINISTRATOR
        )
    api = token_client(world.outsider)
    webhooks = "/api/v1/organizations/riverside/webhooks/"  # an administrator's list
    assert api.get(webhooks).status_code == 200  # the cache is warm
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(webhooks).status_code == 200
    assert not [q for q in ctx.captured_queries if "core_membership" in q["sql"]]
    with scopes_disabled():
        second.role = Role.AUDITOR
        second.save()
    assert api.get(webhooks).status_code == 403  # demoted
    with scopes_disabled():
        second.is_active = False
        second.save()
    assert api.get(webhooks).status_code == 404  # no longer a member of riverside
    assert api.get("/api/v1/organizations/lakeview/webhooks/").status_code == 200
