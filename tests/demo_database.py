"""The seeded demo, loaded once per test worker instead of once per module or test.

``seed_demo`` is the largest fixed cost of the suite (both demo hospitals, their imports,
calculations and report PDFs: 10-15 s), and a dozen modules need it. On PostgreSQL each worker
loads it once into a database of its own, ``<test database>_demo`` (a copy of the migrated test
database, made with ``CREATE DATABASE … TEMPLATE``), and a module that needs the demo points the
connection at that database for its duration:

* ``seeded_demo`` (module): the demo as the database of the module's tests, inside one
  transaction rolled back at the end of the module (what the module adds for all its tests goes
  in it); each test runs in its own savepoint as usual (the ``db`` fixture), so no test changes
  the demo another one sees;
* ``demo_copy`` (function, for ``transaction=True`` tests such as a live server's): a fresh copy
  of the demo as the test's database, dropped afterwards; what the test commits stays there.

On SQLite (the test database in memory) both fall back to seeding where they are used, as before.
Caches are emptied when the demo changes hands: a cached page of one module's demo is not
another's.

A module-scoped fixture lasts until the module's last test, so in a module that mixes the two,
the tests that use the demo come after those that do not; a database test that does not ask
for the demo while it is active fails with a message (``demo_only_where_asked``) instead of
running on the demo's database.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections, transaction
from django_scopes import scopes_disabled


def _use(name: str) -> None:
    """Point the default connection (every thread's, the live server's too) at ``name``."""
    connections.close_all()
    connection.settings_dict["NAME"] = name
    settings.DATABASES["default"]["NAME"] = name


def _end_sessions(name: str) -> None:
    """End other sessions on ``name`` (a live server thread's): PostgreSQL copies or drops a
    database only when nobody is connected to it."""
    with connection._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )


def _copy(source: str, target: str) -> None:
    quote = connection.ops.quote_name
    connections.close_all()
    _end_sessions(source)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(target)}")
        cursor.execute(f"CREATE DATABASE {quote(target)} TEMPLATE {quote(source)}")


def _drop(name: str) -> None:
    _end_sessions(name)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)}")


@contextmanager
def _switched(name: str | None) -> Iterator[None]:
    """The default connection on database ``name`` (None: where it is) for the block, with the
    cache emptied on the way in and out: a cached page of one demo is not another's."""
    base = connection.settings_dict["NAME"]
    if name is not None:
        _use(name)
    cache.clear()
    try:
        yield
    finally:
        if name is not None:
            _use(base)
        cache.clear()


def seed() -> None:
    """``seed_demo`` into the current database (the indicator template library first, which a
    transactional test's flush may have emptied)."""
    from indicators.library import templates_load
    from indicators.models import IndicatorTemplate

    with scopes_disabled():
        if not IndicatorTemplate.objects.exists():
            templates_load(IndicatorTemplate)
    call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture(scope="session")
def demo_database(django_db_setup, django_db_blocker) -> Iterator[str | None]:  # type: ignore[no-untyped-def]
    """This worker's database with the demo loaded (PostgreSQL), or None (SQLite)."""
    if connection.vendor != "postgresql":
        yield None
        return
    name = f"{connection.settings_dict['NAME']}_demo"
    with django_db_blocker.unblock():
        _copy(connection.settings_dict["NAME"], name)
        with _switched(name):
            seed()
    yield name
    with django_db_blocker.unblock():
        _drop(name)


#: True while a module's ``seeded_demo`` is set up (until the module's last test).
_active = False


@pytest.fixture(autouse=True)
def demo_only_where_asked(request: pytest.FixtureRequest) -> None:
    """A database test that does not ask for the demo never runs on it."""
    if not _active or "seeded_demo" in request.fixturenames:
        return
    if {"db", "transactional_db"} & set(request.fixturenames) or request.node.get_closest_marker(
        "django_db"
    ):
        pytest.fail(
            "this test would run on the seeded demo's database (an earlier test of its module "
            "asked for seeded_demo): put the tests that use the demo after the others, or in a "
            "module of their own"
        )


@pytest.fixture(scope="module")
def seeded_demo(demo_database, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The demo as the database of this module's tests, in a transaction rolled back at the
    end of the module."""
    global _active
    with django_db_blocker.unblock(), _switched(demo_database), transaction.atomic():
        if demo_database is None:
            seed()
        _active = True
        try:
            yield
        finally:
            _active = False
        transaction.set_rollback(True)


@pytest.fixture
def demo_copy(demo_database, transactional_db, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A fresh copy of the demo as this (transactional) test's database."""
    if demo_database is None:
        seed()
        yield
        return
    copy = f"{demo_database}_copy"
    with django_db_blocker.unblock():
        _copy(demo_database, copy)
    try:
        with _switched(copy):
            yield
    finally:
        with django_db_blocker.unblock():
            _drop(copy)
