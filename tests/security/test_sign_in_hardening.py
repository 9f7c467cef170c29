"""Sign-in and rate limits hold up against a dead cache, a proxy and a spoofed header.

* Rate limits do not fail open while Redis is down: each process keeps its own history.
* Failed sign-ins are counted per e-mail address *and* client address; behind a trusted proxy
  the client is the forwarded address, so an attacker locks out only themselves, and an
  ``X-Forwarded-For`` from anyone else (or the part of it a client wrote) is ignored.
* E-mail addresses are case-insensitive at sign-in and in the lockout count.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.test import APIClient

from comanage.core.api_auth import TokenRateThrottle, local_throttle_clear
from comanage.core.cache import ResilientRedisCache
from comanage.core.models import ApiToken, User
from comanage.core.security.clientip import client_ip, login_username
from tests.api.conftest import token_client

PASSWORD = "correct horse battery"  # tests/factories.UserFactory
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
PROXY = "10.0.0.2"


@pytest.fixture
def cache_down(settings):  # type: ignore[no-untyped-def]
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "comanage.core.cache.ResilientRedisCache",
            "LOCATION": DEAD_REDIS,
            "KEY_PREFIX": "apisec",
        },
    }
    assert isinstance(caches["default"], ResilientRedisCache)
    local_throttle_clear()
    yield
    local_throttle_clear()


@pytest.fixture
def behind_proxy(settings):  # type: ignore[no-untyped-def]
    settings.COMANAGE_TRUSTED_PROXIES = ["10.0.0.0/8"]


def _sign_in(client: Client, email: str, password: str, **meta: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("login"), {"username": email, "password": password}, **meta)


# ----------------------------------------------------------------------------- Redis down


def test_with_the_cache_down_the_api_rate_limit_still_holds(world, cache_down, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    client = token_client(world.users["auditor"])
    for _ in range(3):
        assert client.get("/api/v1/organizations/").status_code == 200
    response = client.get("/api/v1/organizations/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_with_the_cache_down_the_token_endpoint_is_still_limited(world, cache_down, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "2/minute"})
    session = APIClient()
    session.force_login(world.users["auditor"])
    codes = [
        session.post("/api/v1/tokens/", {"name": f"t{i}"}, format="json").status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 429, 429]
    assert ApiToken.objects.filter(user=world.users["auditor"]).count() == 2


def test_with_the_cache_down_failed_sign_ins_still_lock_the_account(world, cache_down):
    # The lockout is counted in the database (django-axes' database handler), not the cache.
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    user = world.users["executive"]
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _sign_in(client, user.email, "wrong")
    assert response.status_code == 429
    assert _sign_in(client, user.email, PASSWORD).status_code == 429


def test_with_the_cache_working_the_limit_is_shared_not_only_local(world, monkeypatch):
    """The local copy adds to the shared history, it never replaces it: a history kept in the
    cache by another process counts here."""
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    # No history of an earlier test (a user id may be used again once its rows rolled back).
    caches["default"].clear()
    local_throttle_clear()
    client = token_client(world.users["auditor"])
    assert client.get("/api/v1/organizations/").status_code == 200
    local_throttle_clear()  # as if the two next requests had gone to another process
    assert client.get("/api/v1/organizations/").status_code == 200
    assert client.get("/api/v1/organizations/").status_code == 200
    assert client.get("/api/v1/organizations/").status_code == 429


# ----------------------------------------------------------------------------- proxies


def test_behind_the_proxy_an_attacker_locks_out_only_themselves(world, behind_proxy):
    signer = world.users["counsel"]
    attacker = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        response = _sign_in(
            attacker, signer.email, "guess", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
    assert response.status_code == 429
    # The signer, through the same proxy from their own address, signs in.
    response = _sign_in(
        Client(), signer.email, PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert response.status_code == 302, response.content[:300]


def test_a_client_cannot_escape_the_lockout_by_writing_its_own_forwarded_header(
    world, behind_proxy
):
    signer = world.users["counsel"]
    attacker = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT + 3):
        # Through the proxy: the client's own header comes first, the proxy appends its peer.
        response = _sign_in(
            attacker,
            signer.email,
            "guess",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}, 198.51.100.7",
        )
    assert response.status_code == 429
    # Straight to the server (not a trusted proxy): the header is ignored altogether.
    direct = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT + 3):
        response = _sign_in(
            direct,
            signer.email,
            "guess",
            REMOTE_ADDR="198.51.100.99",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}",
        )
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("198.51.100.1", "", "198.51.100.1"),
        ("198.51.100.1", "203.0.113.5", "198.51.100.1"),  # not a proxy of ours: ignored
        (PROXY, "203.0.113.5", "203.0.113.5"),
        (PROXY, "1.1.1.1, 203.0.113.5", "203.0.113.5"),  # the client wrote 1.1.1.1
        (PROXY, "203.0.113.5, 10.0.0.7", "203.0.113.5"),  # two proxies of ours
        (PROXY, "garbage", PROXY),
        (PROXY, "", PROXY),
        (PROXY, "[2001:db8::5]:443", "2001:db8::5"),
    ],
)
def test_the_client_address(behind_proxy, remote, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.COMANAGE_TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert client_ip(request) == PROXY


def test_requests_without_a_user_are_throttled_by_the_real_client_address(settings):
    """DRF's own reading takes any client's X-Forwarded-For as its identity: a fresh header
    per request would be a fresh allowance."""
    settings.COMANAGE_TRUSTED_PROXIES = []
    throttle = TokenRateThrottle()
    idents = {
        throttle.get_ident(
            Request(
                RequestFactory().get(
                    "/", REMOTE_ADDR="198.51.100.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}"
                )
            )
        )
        for i in range(3)
    }
    assert idents == {"198.51.100.5"}


# ----------------------------------------------------------------------------- e-mail case


def test_sign_in_ignores_the_case_of_the_email_address(world):
    user = world.users["executive"]
    shouted = user.email.upper()
    response = _sign_in(Client(), shouted, PASSWORD)
    assert response.status_code == 302, response.content[:300]


def test_failures_in_any_case_count_towards_one_lockout(world):
    user = world.users["executive"]
    client = Client()
    variants = [
        user.email.upper(),
        user.email.title(),
        user.email,
        user.email.swapcase(),
        " " + user.email.capitalize(),
    ]
    for index in range(settings.AXES_FAILURE_LIMIT):
        response = _sign_in(client, variants[index % len(variants)], "wrong")
    assert response.status_code == 429
    assert _sign_in(client, user.email, PASSWORD).status_code == 429
    assert login_username(None, {"username": " Alice@Hospital.ORG "}) == "alice@hospital.org"


def test_addresses_are_stored_lower_case_however_they_are_saved(db):
    user = User.objects.create_user("Alice@Hospital.org", PASSWORD)
    assert user.email == "alice@hospital.org"
    user.email = "Alice.Smith@Hospital.org"
    user.save()
    user.refresh_from_db()
    assert user.email == "alice.smith@hospital.org"
    assert User.objects.get_by_natural_key("ALICE.SMITH@hospital.org") == user


def test_a_password_reset_finds_the_account_in_any_case(world, client):
    from django.core import mail

    client.post(reverse("password_reset"), {"email": world.users["auditor"].email.upper()})
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [world.users["auditor"].email]
