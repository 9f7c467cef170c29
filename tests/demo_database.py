"""The test databases on PostgreSQL: migrated once per run, the demo loaded once per run.

Migrating a new database takes 15-30 s (Django renders the models' state again for each of the
run's 64 migrations), and ``seed_demo`` (both demo hospitals, their imports, calculations and
report PDFs) 10-15 s more. Under xdist on PostgreSQL with a new database (CI, ``--create-db``),
the first worker to need a database migrates one template, ``test_<name>``, and every worker
copies it into its own (``test_<name>_gw0``…: ``CREATE DATABASE … TEMPLATE``, under a second)
instead of each migrating its own (``django_db_setup``). Likewise the first worker to need the
demo loads it once into ``test_<name>_demo`` and every worker copies that into
``<its test database>_demo``. A file lock in the run's temporary folder orders the workers;
whoever finishes first drops the shared templates (a worker that comes later builds them
again). With ``--reuse-db`` (``make test`` locally) each worker keeps its own migrated database
as pytest-django does, and without xdist nothing is shared.

``seed_demo`` is the largest fixed cost of the suite, and a dozen modules need it. A module that
needs the demo points the connection at its worker's copy for its duration:

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

import fcntl
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections, transaction
from django_scopes import scopes_disabled


def delete_to_flush() -> None:
    """The test suite's flush (the end of each transactional test) empties the tables with
    DELETE, not PostgreSQL's TRUNCATE.

    A TRUNCATE of the schema's hundred-odd tables gives each a new file (and its indexes and
    TOAST table theirs): 0.8-1.5 s a flush, most of the suite's teardown time, for tables that
    hold a test's few rows. DELETE empties them in 0.03 s. Every foreign key is deferrable
    (Django makes them so), so the order does not matter; nothing has triggers; sequences are
    not reset either way unless asked (then TRUNCATE … RESTART IDENTITY, as before)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return ["SET CONSTRAINTS ALL DEFERRED;"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(t))};"
            for t in tables
        ]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


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


def copy_database(source: str, target: str) -> None:
    quote = connection.ops.quote_name
    connections.close_all()
    _end_sessions(source)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(target)}")
        cursor.execute(f"CREATE DATABASE {quote(target)} TEMPLATE {quote(source)}")


def drop_database(name: str) -> None:
    _end_sessions(name)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)}")


@contextmanager
def using_database(name: str | None) -> Iterator[None]:
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


@contextmanager
def _run_lock(shared: Path) -> Iterator[Path]:
    """The run's shared folder, held by this worker alone for the block."""
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / "databases.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield shared


def _shared_folder(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The folder the run's workers share (the xdist controller's temporary folder), or None
    when nothing is shared: no xdist, or not PostgreSQL."""
    if not hasattr(config, "workerinput") or connection.vendor != "postgresql":
        return None
    return tmp_path_factory.getbasetemp().parent / "test-databases"


def _template_name(config: pytest.Config) -> str:
    """``test_<name>``: this worker's test database name without pytest-django's ``_gwN``."""
    worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
    return str(connection.settings_dict["TEST"]["NAME"]).removesuffix(f"_{worker}")


def _drop_shared(shared: Path, marker: str) -> None:
    """Drop a shared template this worker no longer needs (a later worker builds it again)."""
    with _run_lock(shared):
        done = shared / marker
        if done.exists():
            drop_database(done.read_text())
            done.unlink()


@pytest.fixture(scope="session")
def django_db_setup(  # type: ignore[no-untyped-def]  # noqa: PLR0913 - pytest-django's fixtures
    request,
    tmp_path_factory,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
) -> Iterator[None]:
    """pytest-django's ``django_db_setup``, except that under xdist on PostgreSQL a new test
    database is a copy of one migrated once per run (the module's docstring)."""
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    keepdb = django_db_keepdb and not django_db_createdb
    shared = _shared_folder(request.config, tmp_path_factory)
    if shared is None or keepdb or not django_db_use_migrations:
        if not django_db_use_migrations:
            from pytest_django.fixtures import _disable_migrations

            _disable_migrations()
        with django_db_blocker.unblock():
            config = setup_databases(
                verbosity=verbosity,
                interactive=False,
                aliases={"default"},
                serialized_aliases=set(),  # no test asks for serialized_rollback
                keepdb=keepdb,
            )
        yield
        if not django_db_keepdb:
            with django_db_blocker.unblock():
                if connection.vendor == "postgresql":
                    # A test's thread (a live server's, a local HTTP server's) may still hold
                    # a connection, and PostgreSQL refuses to drop a database in use.
                    _end_sessions(str(connection.settings_dict["NAME"]))
                teardown_databases(config, verbosity=verbosity)
        return
    test_settings = connection.settings_dict["TEST"]
    own = str(test_settings["NAME"])
    template = _template_name(request.config)
    with django_db_blocker.unblock():
        with _run_lock(shared):
            done = shared / "migrated"
            if not done.exists():
                test_settings["NAME"] = template
                try:
                    connection.creation.create_test_db(
                        verbosity=verbosity, autoclobber=True, serialize=False
                    )
                finally:
                    test_settings["NAME"] = own
                done.write_text(template)
            copy_database(template, own)
        _use(own)
    yield
    with django_db_blocker.unblock():
        drop_database(own)
        _drop_shared(shared, "migrated")


@pytest.fixture(scope="session")
def demo_database(
    request, tmp_path_factory, django_db_setup, django_db_blocker
) -> Iterator[str | None]:  # type: ignore[no-untyped-def]
    """This worker's database with the demo loaded (PostgreSQL), or None (SQLite)."""
    if connection.vendor != "postgresql":
        yield None
        return
    own = connection.settings_dict["NAME"]
    name = f"{own}_demo"
    shared = _shared_folder(request.config, tmp_path_factory)
    with django_db_blocker.unblock():
        if shared is None:
            copy_database(own, name)
            with using_database(name):
                seed()
        else:
            with _run_lock(shared):
                done = shared / "demo"
                if not done.exists():
                    template = f"{_template_name(request.config)}_demo"
                    copy_database(own, template)
                    with using_database(template):
                        seed()
                    done.write_text(template)
                copy_database(done.read_text(), name)
    yield name
    with django_db_blocker.unblock():
        drop_database(name)
        if shared is not None:
            _drop_shared(shared, "demo")


def needs_database(item: pytest.Item) -> bool:
    """The test uses the test database (marked ``django_db``, or a fixture that needs it)."""
    return item.get_closest_marker("django_db") is not None or "django_db_setup" in getattr(
        item, "fixturenames", ()
    )


def order_for_workers(items: list[pytest.Item]) -> None:
    """Order the run so that neither worker waits while the other builds the databases.

    The first worker to need a database migrates the run's template (about 40 s on a busy
    2-core machine) and loads the demo (about 20 s), and until then the other worker can run
    only tests that need no database. xdist hands each worker the next test as it finishes one
    (``--dist loadgroup``, one test a unit), so the run starts with one test that needs the demo
    (its worker builds both), then every module that needs no database (the other worker's
    share meanwhile), then the rest in their usual order. Apart from that first test, modules
    stay whole and in order, so module-scoped fixtures and ``demo_only_where_asked`` see what
    they saw before (the first test sets up its module's fixtures for itself alone)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    first = next((i for i in items if "demo_database" in getattr(i, "fixturenames", ())), None)
    free = [i for m in modules.values() if not any(map(needs_database, m)) for i in m]
    placed = {id(i) for i in free} | {id(first)}
    rest = [i for i in items if id(i) not in placed]
    items[:] = ([first] if first is not None else []) + free + rest


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
    with django_db_blocker.unblock(), using_database(demo_database), transaction.atomic():
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
        copy_database(demo_database, copy)
    try:
        with using_database(copy):
            yield
    finally:
        with django_db_blocker.unblock():
            drop_database(copy)
