"""Test worlds: every test world has an organization A with a member of each role, and an
outsider from organization B (style: "Outsiders get 404")."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from comanage.core.models import Membership, Organization, Role, User
from tests import factories as f
from tests import threadsafe_ast
from tests.demo_database import (  # noqa: F401
    demo_copy,
    demo_database,
    demo_only_where_asked,
    django_db_setup,
    order_for_workers,
    seeded_demo,
)

ROLES = [r.value for r in Role]

threadsafe_ast.install()


@dataclass
class World:
    org: Organization
    other_org: Organization
    users: dict[str, User] = field(default_factory=dict)
    memberships: dict[str, Membership] = field(default_factory=dict)
    outsider: User | None = None
    physician = None
    other_physician = None

    def client(self, who: str) -> Client:
        """A signed-in client: a role of A, 'outsider' (admin of B) or 'anonymous'."""
        client = Client()
        if who == "anonymous":
            return client
        user = self.outsider if who == "outsider" else self.users[who]
        client.force_login(user)
        return client

    def scope(self):  # type: ignore[no-untyped-def]
        return scope(organization=self.org)


class _NewOrganization(f.OrganizationFactory):
    """An organization created outright: the world's are new in every test, so the factory's
    look-up first (``django_get_or_create``: a SELECT and a savepoint around the INSERT) is
    work for nothing; a third of the world's queries, run before about 1,100 tests."""

    class Meta:
        django_get_or_create = ()


class _NewUser(f.UserFactory):
    """A user created outright (as ``_NewOrganization``)."""

    class Meta:
        django_get_or_create = ()


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    org = _NewOrganization(name="Riverside Medical Center", slug="riverside")
    other = _NewOrganization(name="Lakeview Health", slug="lakeview")
    w = World(org=org, other_org=other)
    w.physician = f.PhysicianFactory(organization=org, first_name="Ann", last_name="Adams")
    w.other_physician = f.PhysicianFactory(organization=org, first_name="Bo", last_name="Baker")
    for role in ROLES:
        user = _NewUser(
            email=f"{role}@riverside.example", first_name=role.title(), last_name="Riverside"
        )
        w.users[role] = user
        w.memberships[role] = f.MembershipFactory(
            organization=org,
            user=user,
            role=role,
            physician=w.physician if role == Role.PHYSICIAN else None,
        )
    w.outsider = _NewUser(email="admin@lakeview.example", first_name="Olive", last_name="Outsider")
    f.MembershipFactory(organization=other, user=w.outsider, role=Role.ADMINISTRATOR)
    return w


@pytest.fixture
def no_scopes():  # type: ignore[no-untyped-def]
    with scopes_disabled():
        yield


@pytest.fixture(scope="session")
def live_server():  # type: ignore[no-untyped-def]
    """pytest-django's live server, started with a MEDIA_URL on another host.

    Django's live server always wraps a media-file handler, which fails on ``MEDIA_URL = None``
    (uploads are never served by URL). Given a URL with a host, it serves nothing at all.
    """
    from django.core.servers.basehttp import WSGIRequestHandler
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    # Each response is written in several small sends (status line, headers, body); with
    # Nagle's algorithm on, a keep-alive client's delayed ACK holds every response ~40 ms.
    WSGIRequestHandler.disable_nagle_algorithm = True
    with override_settings(MEDIA_URL="http://media.invalid/"):
        server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _template_library_present(request: pytest.FixtureRequest) -> None:
    """The indicator template library is loaded by a data migration; a transactional test
    (``django_db(transaction=True)``) ends with a flush that empties it for every later test on
    the same worker. Load it again whenever a database test finds it gone."""
    names = request.fixturenames
    if "transactional_db" in names:
        request.getfixturevalue("transactional_db")
    elif "db" in names:
        request.getfixturevalue("db")
    elif request.node.get_closest_marker("django_db") is None:
        return
    from indicators.library import templates_load
    from indicators.models import IndicatorTemplate

    if not IndicatorTemplate.objects.exists():
        templates_load(IndicatorTemplate)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the order that keeps both workers busy while the databases are built."""
    if hasattr(config, "workerinput"):
        order_for_workers(items)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In an xdist run with browser tests: start loading their demo database in the background
    (tests/browser/seed.py), so that no worker waits for it. Transactional tests' flushes
    empty the tables with DELETE (``delete_to_flush``)."""
    from tests.browser.seed import start_in_background
    from tests.demo_database import delete_to_flush

    delete_to_flush()
    start_in_background(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.browser.seed import stop_background

    stop_background()
