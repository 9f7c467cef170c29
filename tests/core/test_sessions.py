"""Sessions are read through the cache, but the database is the record: a logout, a password
change or an expiry ends a session at once, whatever the cache still held."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client

from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db


def _client_with(cookie: str) -> Client:
    client = Client()
    client.cookies["sessionid"] = cookie
    return client


def test_a_signed_out_sessions_cookie_no_longer_signs_anyone_in(world):
    client = world.client("executive")
    assert client.get("/o/riverside/dashboard/").status_code == 200  # cached now
    cookie = client.cookies["sessionid"].value
    client.post("/account/logout/")
    replay = _client_with(cookie).get("/o/riverside/dashboard/")
    assert replay.status_code == 302 and "/account/login/" in replay["Location"]


def test_a_session_deleted_from_the_database_ends_within_a_minute(world):
    client = world.client("executive")
    start = dt.datetime.now(tz=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert client.get("/o/riverside/dashboard/").status_code == 200
        Session.objects.all().delete()  # e.g. an administrator ending every session
        clock.shift(dt.timedelta(seconds=61))
        response = client.get("/o/riverside/dashboard/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_an_expired_session_is_not_served_from_the_cache(world, settings):
    settings.SESSION_COOKIE_AGE = 120
    client = world.client("executive")
    cookie = client.cookies["sessionid"].value
    start = dt.datetime.now(tz=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert _client_with(cookie).get("/o/riverside/dashboard/").status_code == 200
        clock.shift(dt.timedelta(seconds=181))
        response = _client_with(cookie).get("/o/riverside/dashboard/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_a_password_change_ends_the_other_sessions(world):
    user = world.users["executive"]
    other = world.client("executive")
    assert other.get("/o/riverside/dashboard/").status_code == 200  # cached now
    user.set_password("a completely new passphrase")
    user.save()
    response = other.get("/o/riverside/dashboard/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_an_api_call_with_a_token_stores_no_session_and_sets_no_cookie(world):
    """A script's calls are signed with its token: none of them may leave a session row behind
    or be sent a session cookie (the sliding expiry is for signed-in browsers)."""
    client = token_client(world.users["administrator"])
    for _ in range(3):
        response = client.get("/api/v1/organizations/riverside/agreements/")
        assert response.status_code == 200
        assert "sessionid" not in response.cookies
    assert Session.objects.count() == 0


def test_a_signed_in_browser_session_is_still_pushed_forward(world):
    client = world.client("executive")
    start = dt.datetime.now(tz=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert client.get("/o/riverside/dashboard/").status_code == 200
        first = Session.objects.get().expire_date
        clock.shift(dt.timedelta(seconds=61))
        assert client.get("/o/riverside/dashboard/").status_code == 200
    assert Session.objects.get().expire_date > first
