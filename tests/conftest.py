"""Test worlds: every test world has an organization A with a member of each role, and an
outsider from organization B (style: "Outsiders get 404")."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from comanage.core.models import Membership, Organization, Role, User
from tests import factories as f

ROLES = [r.value for r in Role]


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


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    org = f.OrganizationFactory(name="Riverside Medical Center", slug="riverside")
    other = f.OrganizationFactory(name="Lakeview Health", slug="lakeview")
    w = World(org=org, other_org=other)
    w.physician = f.PhysicianFactory(organization=org, first_name="Ann", last_name="Adams")
    w.other_physician = f.PhysicianFactory(organization=org, first_name="Bo", last_name="Baker")
    for role in ROLES:
        user = f.UserFactory(
            email=f"{role}@riverside.example", first_name=role.title(), last_name="Riverside"
        )
        w.users[role] = user
        w.memberships[role] = f.MembershipFactory(
            organization=org,
            user=user,
            role=role,
            physician=w.physician if role == Role.PHYSICIAN else None,
        )
    w.outsider = f.UserFactory(
        email="admin@lakeview.example", first_name="Olive", last_name="Outsider"
    )
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
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

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


@pytest.fixture(scope="session", autouse=True)
def _no_stray_database_sessions(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A thread of a test (a live server's, a local HTTP server's) may still hold a connection
    when the session ends, and PostgreSQL then refuses to drop the test database. Those sessions
    are ended before pytest-django drops it."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# ----------------------------------------------------------------------------- test databases
# On PostgreSQL under xdist every worker used to run all migrations into its own database (about
# a minute of CPU each on this machine). Now the first worker migrates one template database,
# ``<test database>_template``, and every worker's database is created from it (Django's
# ``TEST["TEMPLATE"]``: ``CREATE DATABASE ... TEMPLATE``); ``migrate`` then finds nothing to
# apply. The same migrations and data migrations run, once per run instead of once per worker.
# The workers take turns (a file lock): PostgreSQL copies a database only while nobody else
# uses it. pytest-django's own fixture, otherwise unchanged.


def _database_exists(name: str) -> bool:
    from django.db import connection

    with connection._nodb_cursor() as cursor:
        return bool(connection.creation._database_exists(cursor, name))


def _build_template(template: str) -> None:
    """Migrate ``template`` from scratch, then close the connection to it."""
    from django.conf import settings
    from django.db import connection

    test_settings = connection.settings_dict["TEST"]
    name, worker_db = connection.settings_dict["NAME"], test_settings["NAME"]
    test_settings["NAME"] = template
    try:
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=False
        )
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        settings.DATABASES[connection.alias]["NAME"] = name
        test_settings["NAME"] = worker_db


@contextmanager
def _from_template(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keepdb: bool,
    migrations: bool,
) -> Iterator[None]:
    """Within: the worker's database is created from the run's template (built if needed)."""
    from django.db import connection

    worker = getattr(request.config, "workerinput", {}).get("workerid")
    if not worker or connection.vendor != "postgresql" or not migrations:
        yield
        return
    test_settings = connection.settings_dict["TEST"]
    worker_db = test_settings["NAME"]
    template = f"{worker_db.removesuffix(f'_{worker}')}_template"
    shared = tmp_path_factory.getbasetemp().parent  # this run's directory, shared by workers
    with (shared / "test-database-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if keepdb and _database_exists(worker_db):
            yield  # --reuse-db: the worker's database is kept and migrated forward
            return
        built = shared / "test-database-template.built"
        if not built.exists() and not (keepdb and _database_exists(template)):
            _build_template(template)
        built.touch()
        test_settings["TEMPLATE"] = template
        try:
            yield
        finally:
            connection.close()  # (the worker's own database, not the template)


@pytest.fixture(scope="session")
def django_db_setup(  # type: ignore[no-untyped-def]  # noqa: PLR0913
    request: pytest.FixtureRequest,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations: bool,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings,
    tmp_path_factory: pytest.TempPathFactory,
):
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _disable_migrations, _get_databases_for_setup

    if not django_db_use_migrations:
        _disable_migrations()
    keepdb = django_db_keepdb and not django_db_createdb
    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    verbosity = request.config.option.verbose
    template = _from_template(request, tmp_path_factory, keepdb, django_db_use_migrations)
    with django_db_blocker.unblock(), template:
        db_cfg = setup_databases(
            verbosity=verbosity,
            interactive=False,
            aliases=aliases,
            serialized_aliases=serialized_aliases,
            keepdb=keepdb,
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            try:
                teardown_databases(db_cfg, verbosity=verbosity)
            except Exception as exc:  # noqa: BLE001
                request.node.warn(
                    pytest.PytestWarning(f"Error when trying to teardown test databases: {exc!r}")
                )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller of an xdist run drops the template after the workers, unless the
    databases are kept (``--reuse-db``: the template serves a worker whose database is gone)."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if config.getoption("reuse_db", False) and not config.getoption("create_db", False):
        return
    from django.conf import settings

    if not settings.configured or not settings.DATABASES["default"]["ENGINE"].endswith(
        "postgresql"
    ):
        return
    from django.db import connection
    from pytest_django.plugin import blocking_manager_key

    test_name = connection.settings_dict["TEST"].get("NAME") or (
        f"test_{connection.settings_dict['NAME']}"
    )
    with config.stash[blocking_manager_key].unblock(), connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{test_name}_template"')
