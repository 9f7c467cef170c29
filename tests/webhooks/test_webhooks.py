"""Webhooks: endpoints (administrators only), signed deliveries received by a real local HTTP
server, retries of transient failures, re-sending, refused URLs, and no organization ever
receiving another's events."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import override_settings
from django_scopes import scope, scopes_disabled
from standardwebhooks import Webhook

from adjudication import services as adjudication_services
from adjudication.models import PaymentLine
from comanage.core.audit import event_record
from comanage.core.webhooks import services
from comanage.core.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.adjudication.conftest import advance

pytestmark = pytest.mark.django_db

BASE = "/api/v1/organizations/riverside/webhooks/"
REPORT_EVENTS = [
    "report.submitted",
    "report.approved",
    "report.returned",
    "payment.authorised",
    "payment.recorded",
    "calculation.finished",
]


def _register(api, url, events=REPORT_EVENTS):  # type: ignore[no-untyped-def]
    response = api("administrator").post(
        BASE, {"url": url, "events": events, "description": "Accounts payable"}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _verified(receiver, secret):  # type: ignore[no-untyped-def]
    """Every received body, verified with the endpoint's secret (raises if one is not)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]


def test_deliveries_are_signed_and_received(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    created = _register(api, receiver.url)
    assert created["secret"].startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        report = advance(world, recorded.report, "review", "submit", "approve", "authorise")
    bodies = _verified(receiver, created["secret"])
    assert [b["type"] for b in bodies] == [
        "report.submitted",
        "report.approved",
        "payment.authorised",
    ]
    approved = bodies[1]["data"]
    assert approved["organization"] == "riverside"
    assert approved["object"]["report"] == report.pk
    assert approved["object"]["calculation_hash"] == report.calculation_hash
    assert approved["object"]["total_compensation"] == "700000.00"
    assert approved["object"]["payments_total"] is None  # no payment lines before authorising
    assert bodies[2]["data"]["object"]["payments_total"] == "700000.00"
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 3 and all(i.startswith("msg_") for i in ids)
    with world.scope():
        rows = WebhookDelivery.objects.order_by("pk")
        assert [(d.status, d.attempts, d.response_code) for d in rows] == [
            (DeliveryStatus.SUCCEEDED, 1, 200)
        ] * 3
        assert rows[0].response_excerpt == "answered 200"
        line = PaymentLine.objects.filter(report=report).order_by("position").first()
    with django_capture_on_commit_callbacks(execute=True), world.scope():
        adjudication_services.payment_record(
            line=line,
            paid_amount=line.amount,
            paid_on=dt.date(2026, 1, 15),
            reference="ACH 1",
            user=world.users["administrator"],
        )
    paid = _verified(receiver, created["secret"])[-1]
    assert paid["type"] == "payment.recorded"
    assert paid["data"]["object"]["amount"] == f"{line.amount:.2f}"
    assert paid["data"]["object"]["paid_on"] == "2026-01-15"
    assert "ACH 1" not in receiver.received[-1].body.decode()  # ids and figures, no free text


def test_a_forged_or_other_secret_does_not_verify(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    _register(api, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(services.secret_generate()).verify(
            receiver.received[0].body, receiver.received[0].headers
        )


def test_transient_failure_is_retried_with_the_same_id(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    created = _register(api, receiver.url, ["report.submitted"])
    receiver.answers = [500, 429, 200]
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len(_verified(receiver, created["secret"])) == 3
    with world.scope():
        delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        DeliveryStatus.SUCCEEDED,
        3,
        200,
    )


def test_retries_are_bounded_and_a_client_error_is_not_retried(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    _register(api, receiver.url, ["report.submitted", "report.approved"])
    receiver.answers = [503] * 20 + []
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    assert len(receiver.received) == services.MAX_ATTEMPTS
    with world.scope():
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == (
            DeliveryStatus.FAILED,
            services.MAX_ATTEMPTS,
        )
    receiver.answers = [400]
    receiver.received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "approve")
    assert len(receiver.received) == 1
    with world.scope():
        failed = WebhookDelivery.objects.get(event_type="report.approved")
        assert (failed.status, failed.attempts, failed.response_code) == (
            DeliveryStatus.FAILED,
            1,
            400,
        )


def test_connection_error_is_recorded_and_redeliver_sends_again(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    created = _register(api, receiver.url, ["report.submitted"])
    with world.scope():
        WebhookEndpoint.objects.filter(pk=created["id"]).update(
            url="http://127.0.0.1:9/closed"
        )  # nothing listens on the discard port
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    with world.scope():
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.attempts == services.MAX_ATTEMPTS
        assert delivery.response_code is None and "ConnectionError" in delivery.error
        WebhookEndpoint.objects.filter(pk=created["id"]).update(url=receiver.url)
    client = api("administrator")
    listed = client.get("/api/v1/organizations/riverside/webhook-deliveries/").json()
    assert [d["id"] for d in listed["results"]] == [delivery.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/organizations/riverside/webhook-deliveries/{delivery.pk}/redeliver/"
        )
    assert response.status_code == 202
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.event_id]
    _verified(receiver, created["secret"])
    with world.scope():
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (
        DeliveryStatus.SUCCEEDED,
        services.MAX_ATTEMPTS + 1,
    )
    # the endpoint's own list shows it too
    rows = client.get(f"{BASE}{created['id']}/deliveries/").json()
    assert rows["results"][0]["status"] == "succeeded"


def test_a_delivery_is_claimed_once(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    _register(api, receiver.url, ["report.submitted"])
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    with world.scope():
        delivery = WebhookDelivery.objects.get()
        again = services.delivery_attempt(delivery_id=delivery.pk)  # a duplicate message
    assert not again.sent and len(receiver.received) == 1


def test_another_organizations_endpoint_never_receives_the_event(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    with scope(organization=world.other_org):
        services.endpoint_create(
            organization=world.other_org,
            url=receiver.url,
            events=list(services.EVENT_MAP.values()),
            user=world.outsider,
        )
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit", "approve", "authorise")
        with world.scope():
            event_record(
                organization=world.org,
                name="compliance_flag.raised",
                actor=None,
                summary="A's flag",
            )
    assert receiver.received == []
    with scopes_disabled():
        assert not WebhookDelivery.objects.exists()


def test_payload_is_built_in_the_events_organization(world, recorded):
    """An event naming another organization's record gets no data from it."""
    with scope(organization=world.org):
        event = event_record(
            organization=world.other_org, name="report.approved", actor=None, obj=recorded.report
        )
    with scope(organization=world.other_org):
        payload = services.payload_build(event=event, event_type="report.approved")
    assert payload["data"]["organization"] == "lakeview"
    assert payload["data"]["object"] is None


def test_compliance_flag_raised_is_delivered(
    world, api, co_management, receiver, django_capture_on_commit_callbacks
):
    from agreements.services import flag_raise

    created = _register(api, receiver.url, ["compliance_flag.raised"])
    agreement, year = co_management
    with django_capture_on_commit_callbacks(execute=True), world.scope():
        flag, was_created = flag_raise(
            organization=world.org,
            kind="fmv_expired",
            key="test-flag",
            message="FMV opinion expired",
            agreement=agreement,
            programme_year=year,
        )
        flag_raise(
            organization=world.org,
            kind="fmv_expired",
            key="test-flag",
            message="FMV opinion expired",
            agreement=agreement,
            programme_year=year,
        )
    bodies = _verified(receiver, created["secret"])
    assert was_created and [b["type"] for b in bodies] == ["compliance_flag.raised"]
    assert bodies[0]["data"]["object"]["flag"] == flag.pk


def test_disabled_or_unsubscribed_endpoints_get_nothing(
    world, api, recorded, receiver, django_capture_on_commit_callbacks
):
    created = _register(api, receiver.url, ["report.approved"])
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")  # not subscribed
    response = api("administrator").patch(
        f"{BASE}{created['id']}/", {"enabled": False}, format="json"
    )
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert "secret" not in response.json()
    with django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "approve")
    assert receiver.received == []


# ---------------------------------------------------------------------------------------------
# Validation


@override_settings(COMANAGE_WEBHOOKS_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not HTTPS
        "ftp://example.com/hook",
        "https://127.0.0.1/hook",  # loopback
        "https://localhost:8443/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",  # private
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/",  # link-local (cloud metadata)
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://0.0.0.0/hook",
        "https://user:pw@93.184.215.14/hook",
        "not a url",
    ],
)
def test_a_refused_url_is_a_400_naming_url_and_nothing_is_stored(world, api, url):
    client = api("administrator")
    response = client.post(BASE, {"url": url, "events": ["report.approved"]}, format="json")
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    with scopes_disabled():
        assert not WebhookEndpoint.objects.exists()


@override_settings(COMANAGE_WEBHOOKS_ALLOW_PRIVATE=False)
def test_a_public_https_address_is_accepted(world, api):
    response = api("administrator").post(
        BASE, {"url": "https://93.184.215.14/hook", "events": ["report.approved"]}, format="json"
    )
    assert response.status_code == 201


@override_settings(COMANAGE_WEBHOOKS_ALLOW_PRIVATE=False)
def test_changing_the_url_to_a_private_address_is_refused(world, api, receiver):
    with world.scope():
        endpoint, _secret = services.endpoint_create(
            organization=world.org,
            url="https://93.184.215.14/hook",
            events=["report.approved"],
            user=world.users["administrator"],
        )
    response = api("administrator").patch(
        f"{BASE}{endpoint.pk}/", {"url": "https://10.0.0.8/x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "url"
    with world.scope():
        endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.215.14/hook"


@pytest.mark.parametrize("events", [[], ["report.exploded"], "report.approved"])
def test_unknown_or_missing_events_are_a_400_naming_events(world, api, events):
    response = api("administrator").post(
        BASE, {"url": "https://93.184.215.14/h", "events": events}, format="json"
    )
    assert response.status_code == 400
    assert {e["field"].split("[")[0] for e in response.json()["errors"]} == {"events"}


# ---------------------------------------------------------------------------------------------
# Who may


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("administrator", 201),
        ("executive", 403),
        ("counsel", 403),
        ("ceo", 403),
        ("physician", 403),
        ("auditor", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_role_matrix(world, api, who, expected):
    with world.scope():
        endpoint, _secret = services.endpoint_create(
            organization=world.org,
            url="https://93.184.215.14/existing",
            events=["report.approved"],
            user=world.users["administrator"],
        )
        delivery = WebhookDelivery.objects.create(
            organization=world.org,
            endpoint=endpoint,
            event_id="msg_x",
            event_type="report.approved",
            payload="{}",
            status=DeliveryStatus.FAILED,
        )
    client = api(who)
    read = 200 if expected == 201 else expected
    assert client.get(BASE).status_code == read
    assert client.get(f"{BASE}{endpoint.pk}/").status_code == read
    assert client.get(f"{BASE}{endpoint.pk}/deliveries/").status_code == read
    created = client.post(
        BASE, {"url": "https://93.184.215.14/h", "events": ["report.approved"]}, format="json"
    )
    assert created.status_code == expected
    assert (
        client.patch(f"{BASE}{endpoint.pk}/", {"description": "x"}, format="json").status_code
        == read
    )
    assert client.post(f"{BASE}{endpoint.pk}/rotate-secret/").status_code == read
    deliveries = "/api/v1/organizations/riverside/webhook-deliveries/"
    assert client.get(deliveries).status_code == read
    redeliver = client.post(f"{deliveries}{delivery.pk}/redeliver/")
    assert redeliver.status_code == (202 if expected == 201 else expected)
    # the list never shows the secret; deleting is the administrator's too
    if expected == 201:
        assert all("secret" not in row for row in client.get(BASE).json()["results"])
    assert client.delete(f"{BASE}{endpoint.pk}/").status_code == (
        204 if expected == 201 else expected
    )


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("administrator", 200),
        ("executive", 403),
        ("physician", 403),
        ("auditor", 403),
        ("outsider", 404),
    ],
)
def test_settings_pages_role_matrix(world, who, expected):
    with world.scope():
        endpoint, _secret = services.endpoint_create(
            organization=world.org,
            url="https://93.184.215.14/existing",
            events=["report.approved"],
            user=world.users["administrator"],
        )
    client = world.client(who)
    assert client.get("/o/riverside/settings/webhooks/").status_code == expected
    assert client.get(f"/o/riverside/settings/webhooks/{endpoint.pk}/").status_code == expected


def test_settings_page_registers_an_endpoint_and_shows_the_secret_once(world, receiver):
    client = world.client("administrator")
    response = client.post(
        "/o/riverside/settings/webhooks/",
        {"url": receiver.url, "description": "AP", "events": ["report.approved"], "enabled": "on"},
    )
    assert response.status_code == 200
    with world.scope():
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    page = client.get(f"/o/riverside/settings/webhooks/{endpoint.pk}/").content.decode()
    assert endpoint.secret not in page and receiver.url in page
    listing = client.get("/o/riverside/settings/webhooks/").content.decode()
    assert endpoint.secret not in listing


@override_settings(COMANAGE_WEBHOOKS_ALLOW_PRIVATE=False)
def test_settings_page_refuses_a_private_url(world):
    client = world.client("administrator")
    response = client.post(
        "/o/riverside/settings/webhooks/",
        {"url": "https://192.168.1.1/x", "events": ["report.approved"]},
    )
    assert response.status_code == 400 and "url:" in response.content.decode()
    with world.scope():
        assert not WebhookEndpoint.objects.exists()


def test_the_secret_never_reaches_the_history(world):
    with world.scope():
        endpoint, secret = services.endpoint_create(
            organization=world.org,
            url="https://93.184.215.14/h",
            events=["report.approved"],
            user=None,
        )
        record = endpoint.history.first()
    assert not hasattr(record, "secret")
    assert (
        json.dumps([str(getattr(record, f.name)) for f in record._meta.fields]).find(secret) == -1
    )


def test_money_in_payloads_has_two_decimals():
    assert services._money(Decimal("5")) == "5.00"
    assert services._money(Decimal("1234.5")) == "1234.50"


def test_a_refused_import_is_delivered_as_import_refused(
    world, api, receiver, django_capture_on_commit_callbacks
):
    """The savings import job records ``import.refused`` (one line in its task)."""
    from savings import services as savings_services
    from tests.savings.helpers import example_a_agreement, upload, usage_csv, year

    created = _register(api, receiver.url, ["import.refused", "import.applied"])
    agreement = example_a_agreement(world)
    with world.scope():
        data_import = savings_services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            upload=upload("u.csv", usage_csv([{"quantity": "-1"}])),
            user=world.users["administrator"],
            programme_year=year(agreement, 1),
        )
    with django_capture_on_commit_callbacks(execute=True), world.scope():
        savings_services.data_import_start(
            data_import=data_import, user=world.users["administrator"]
        )
    bodies = _verified(receiver, created["secret"])
    assert [b["type"] for b in bodies] == ["import.refused"]
    assert bodies[0]["data"]["object"]["import"] == data_import.pk
    assert bodies[0]["data"]["object"]["status"] == "failed"
