"""A record's history names staff and every edit: ``history.view``, never a physician's.

The indicator definition history once declared ``indicator.view`` (which physicians hold for
their agreements), so a physician read who edited the cut-points and when. Every history page
declares ``history.view``; within the organization a physician is refused (403, before any
object is looked up, as for ``record_history``); another organization's user gets 404.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import scopes_disabled

from comanage.core.permissions import roles_with
from tests import factories as f

pytestmark = pytest.mark.django_db

EXPECTED = {
    "administrator": 200,
    "auditor": 200,
    "executive": 200,
    "counsel": 200,
    "ceo": 200,
    "physician": 403,
    "outsider": 404,
}


@pytest.fixture
def history_url(world, ortho):  # type: ignore[no-untyped-def]
    """The history of an indicator definition an administrator edited, in an agreement the
    physician takes part in (so ``indicator.view`` alone would have let them in)."""
    f.ParticipationFactory(agreement=ortho.agreement, physician=world.physician)
    definition = ortho.definitions["ssi_joint"]
    with scopes_disabled():
        definition._history_user = world.users["administrator"]  # noqa: SLF001 - simple_history's hook
        definition.name = "SSI after joint replacement (revised)"
        definition.save()
    return f"/o/riverside/agreements/{ortho.agreement.pk}/indicators/{definition.pk}/history/"


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_indicator_definition_history_matrix(world, history_url, who):  # type: ignore[no-untyped-def]
    response = world.client(who).get(history_url)
    assert response.status_code == EXPECTED[who]
    if response.status_code == 200:
        assert "Administrator Riverside" in response.content.decode()
    else:
        assert b"Administrator Riverside" not in response.content


def test_the_indicator_page_offers_history_only_to_those_who_may_read_it(world, history_url):  # type: ignore[no-untyped-def]
    page = history_url.rsplit("/", 3)[0] + "/"
    assert history_url in world.client("auditor").get(page).content.decode()
    response = world.client("physician").get(page)
    assert response.status_code == 200
    assert history_url not in response.content.decode()


def _routes(patterns, prefix=""):  # type: ignore[no-untyped-def]
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback, entry.name


def test_no_history_page_is_open_to_a_role_without_history_view():  # type: ignore[no-untyped-def]
    """A history page added later with a looser permission fails here: each declares
    ``history.view`` or a permission granted to fewer roles (the import history is the
    administrator's, ``data.import``), and none to any role for its own records only."""
    history_roles = roles_with("history.view")[0]
    found = {}
    for route, callback, name in _routes(get_resolver().url_patterns):
        # Django's admin (superusers only) has its own history pages and checks.
        if "history" in route and not route.startswith(("django-admin/", "api/")):
            found[name] = getattr(callback, "comanage_permission", None)
    assert {"indicator_definition_history", "record_history", "savings_calculation_history"} <= set(
        found
    )
    loose = {}
    for name, permission in found.items():
        if not isinstance(permission, str):
            loose[name] = permission
            continue
        full, own = roles_with(permission)
        if own or not full <= history_roles:
            loose[name] = permission
    assert loose == {}
