"""The per-organization data version: every write to a tenant row moves its organization's
version (and only its), so page caches keyed on it can never serve an old figure."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from comanage.core.jobs import job_create, job_succeed
from comanage.core.versioning import data_version, data_version_bump, page_cached
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_saved_row_bumps_only_its_organizations_version(world):
    mine, theirs = data_version(world.org.pk), data_version(world.other_org.pk)
    with world.scope():
        f.PracticeFactory(organization=world.org)
    assert data_version(world.org.pk) > mine
    assert data_version(world.other_org.pk) == theirs


def test_an_edit_and_a_delete_each_bump_the_version(world):
    with world.scope():
        practice = f.PracticeFactory(organization=world.org)
        before = data_version(world.org.pk)
        practice.name = "Renamed"
        practice.save()
        edited = data_version(world.org.pk)
        assert edited > before
        agreement = f.AgreementFactory(organization=world.org)
        created = data_version(world.org.pk)
        agreement.delete()
    assert data_version(world.org.pk) > created


def test_a_finished_job_bumps_its_organizations_version(world):
    """Bulk imports (COPY, bulk_create, update) send no signals; they all finish here."""
    with world.scope():
        job = job_create(organization=world.org, kind="test", user=None)
        before, theirs = data_version(world.org.pk), data_version(world.other_org.pk)
        job_succeed(job.pk)
    assert data_version(world.org.pk) > before
    assert data_version(world.other_org.pk) == theirs


def test_a_lost_version_starts_again_above_every_earlier_one(world):
    for _ in range(3):
        data_version_bump(world.org.pk)
    reached = data_version(world.org.pk)
    cache.delete(f"org-data-version:{world.org.pk}")
    assert data_version(world.org.pk) > reached


def test_a_cached_figure_is_recomputed_after_a_write_and_kept_per_organization(world):
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert page_cached(world.org.pk, "test", compute=compute) == 1
    assert page_cached(world.org.pk, "test", compute=compute) == 1  # cached
    assert page_cached(world.other_org.pk, "test", compute=compute) == 2  # own entry
    with world.scope():
        f.PracticeFactory(organization=world.org)
    assert page_cached(world.org.pk, "test", compute=compute) == 3  # new version
    assert page_cached(world.other_org.pk, "test", compute=compute) == 2  # untouched


def test_the_version_read_by_the_tenant_check_is_forgotten_at_the_requests_own_write(world):
    """The tenant check reads the organization's version with the memberships and keeps it for
    the request; a write made by that request bumps it, and the page it renders afterwards
    must read the bumped version (or it would find the figures cached before its write)."""
    from comanage.core.versioning import data_version_forget, data_version_prefetched

    current = data_version(world.org.pk)
    data_version_prefetched(world.org.pk, current)
    try:
        assert data_version(world.org.pk) == current
        with world.scope():
            f.PracticeFactory(organization=world.org)
        assert data_version(world.org.pk) > current
    finally:
        data_version_forget()


def test_a_page_reads_its_organizations_version_in_the_tenant_checks_round_trip(world):
    """Second visit of the same organization: the version comes with the memberships (one
    round trip), and the page's figures are still those of the latest write."""
    client = world.client("executive")
    assert client.get("/o/riverside/dashboard/").status_code == 200
    with world.scope():
        f.PracticeFactory(organization=world.org)
    assert client.get("/o/riverside/dashboard/").context["data_version"] == data_version(
        world.org.pk
    )


def test_the_redis_cache_increments_only_a_key_that_exists_in_one_round_trip(settings):
    """Django's ``incr`` contract (a missing key is a ValueError and is not created), kept by
    the one-round-trip script the data version's bumps use."""
    from unittest import mock

    import redis

    from comanage.core.cache import ResilientRedisCache

    if not getattr(settings, "REDIS_URL", None):
        pytest.skip("needs Redis: set REDIS_URL=redis://... (CI does)")
    redis_cache = ResilientRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "incr-test"})
    redis_cache.delete("counter")
    with pytest.raises(ValueError, match="not found"):
        redis_cache.incr("counter")
    assert redis_cache.get("counter") is None
    redis_cache.set("counter", 41, timeout=60)
    sent = mock.patch.object(
        redis.Redis, "execute_command", autospec=True, side_effect=redis.Redis.execute_command
    )
    with sent as spy:
        assert redis_cache.incr("counter") == 42
    assert [call.args[1] for call in spy.call_args_list] == ["EVALSHA"]
    assert redis_cache.incr("counter", 8) == 50
    assert redis_cache.get("counter") == 50
    redis_cache.delete("counter")


def test_the_redis_cache_increments_in_two_steps_where_scripting_is_refused(settings, monkeypatch):
    """An installation whose Redis ACL forbids scripting (NOPERM) still counts: Django's own
    EXISTS + INCRBY, never an error on every write."""
    import redis

    from comanage.core.cache import ResilientRedisCache

    if not getattr(settings, "REDIS_URL", None):
        pytest.skip("needs Redis: set REDIS_URL=redis://... (CI does)")

    def refused(self, script):  # type: ignore[no-untyped-def]
        def run(**kwargs):  # type: ignore[no-untyped-def]
            raise redis.exceptions.NoPermissionError(
                "this user has no permissions to run 'evalsha'"
            )

        return run

    monkeypatch.setattr(redis.Redis, "register_script", refused)
    redis_cache = ResilientRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "incr-test-acl"})
    redis_cache.set("counter", 1, timeout=60)
    assert redis_cache.incr("counter", 2) == 3
    redis_cache.delete("counter")
    with pytest.raises(ValueError, match="not found"):
        redis_cache.incr("counter")
