"""Case-id hashing, uploads outside the web root, no patient data or secrets in the logs."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.static import serve

from comanage.core.logging import RedactPatientDataFilter
from comanage.core.security import case_id_for_storage, case_id_hash
from tests import factories as f


def test_case_id_hash_is_hmac_sha256_under_the_organizations_key(db):
    org = f.OrganizationFactory()
    expected = hmac.new(org.case_id_key.encode(), b"ENC-2025-000123", hashlib.sha256).hexdigest()
    assert case_id_hash(org, "ENC-2025-000123") == expected
    assert case_id_hash(org, "  ENC-2025-000123 ") == expected
    assert len(expected) == 64
    assert case_id_hash(org, "ENC-2025-000124") != expected
    assert expected != hashlib.sha256(b"ENC-2025-000123").hexdigest()  # keyed, not a bare hash


def test_the_same_case_id_hashes_differently_in_another_organization(db):
    a, b = f.OrganizationFactory(), f.OrganizationFactory()
    assert a.case_id_key != b.case_id_key
    assert case_id_hash(a, "4411") != case_id_hash(b, "4411")


def test_an_empty_case_id_is_refused(db):
    with pytest.raises(ValueError, match="empty"):
        case_id_hash(f.OrganizationFactory(), "  ")


def test_storage_follows_the_hashing_setting(db, settings):
    org = f.OrganizationFactory()
    settings.COMANAGE_CASE_ID_HASHING = False
    assert case_id_for_storage(org, "ENC-1") == "ENC-1"
    settings.COMANAGE_CASE_ID_HASHING = True
    assert case_id_for_storage(org, "ENC-1") == case_id_hash(org, "ENC-1")


def _all_patterns(resolver=None, prefix=""):  # type: ignore[no-untyped-def]
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _all_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_no_url_serves_uploaded_files(world, settings, tmp_path):
    from django.conf import settings as live

    assert live.MEDIA_URL is None
    settings.MEDIA_ROOT = tmp_path / "media"
    secret = Path(settings.MEDIA_ROOT) / "org-1" / "agreements" / "7" / "signed.pdf"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"%PDF-1.7 confidential")
    assert not Path(settings.MEDIA_ROOT).resolve().is_relative_to(Path(live.STATIC_ROOT))
    for pattern, callback in _all_patterns():
        assert callback is not serve, pattern
    client = world.client("administrator")
    for url in (
        "/media/org-1/agreements/7/signed.pdf",
        "/org-1/agreements/7/signed.pdf",
        "/static/org-1/agreements/7/signed.pdf",
        "/uploads/org-1/agreements/7/signed.pdf",
        "/static/../var/test-media/org-1/agreements/7/signed.pdf",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"confidential" not in b"".join(
            getattr(response, "streaming_content", []) or [response.content]
        )


@pytest.fixture
def log_output():  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPatientDataFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("comanage.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.mark.parametrize(
    ("log_call", "secrets"),
    [
        (
            (
                "Import row %d: case_id=%s rejected (mrn=%s, dob=%s)",
                12,
                "ENC-2025-000123",
                "00912345",
                "1950-02-03",
            ),
            ["ENC-2025-000123", "00912345", "1950-02-03"],
        ),
        (
            (
                "Row %s",
                {"case_id": "ENC-77-0042", "patient_name": "Jane Q. Public", "cost": "12000"},
            ),
            ["ENC-77-0042", "Jane Q. Public"],
        ),
        (('Payload {"case_id": "ENC-88-0001", "drg": "247"}',), ["ENC-88-0001"]),
        (
            ("API call with HTTP_AUTHORIZATION: Bearer %s", "cm_AbCdEfGhIjKlMnOpQrStUvWxYz0123"),
            ["cm_AbCdEfGhIjKlMnOpQrStUvWxYz0123"],
        ),
        (
            ("login failed for %s", {"email": "a@b.org", "password": "Tangerine-violin-42"}),
            ["Tangerine-violin-42"],
        ),
        (
            (
                '"GET /account/oidc/callback/?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj HTTP/1.1" 302',  # noqa: E501
            ),
            ["SplxlOBeZQQYbYS6WxSbIA", "af0ifjsldkj"],
        ),
        (
            ("Token response id_token %s", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
            ["eyJhbGciOiJSUzI1NiJ9"],
        ),
        (
            ("token request client_secret=%s&grant_type=authorization_code", "s3cr3t-v4lue"),
            ["s3cr3t-v4lue"],
        ),
    ],
)
def test_log_lines_lose_patient_data_and_secrets(log_output, log_call, secrets):
    logger, stream = log_output
    logger.warning(*log_call)
    text = stream.getvalue()
    assert "[redacted" in text
    for secret in secrets:
        assert secret not in text


def test_exception_text_is_redacted_too(log_output):
    logger, stream = log_output
    try:
        raise RuntimeError(
            'duplicate key value violates unique constraint "uniq_case"\n'
            "DETAIL:  Key (organization_id, case_id)=(3, ENC-2025-000999) "
            "already exists."
        )
    except RuntimeError:
        logger.exception("import failed")
    assert "ENC-2025-000999" not in stream.getvalue()
    assert "import failed" in stream.getvalue()


def test_ordinary_lines_are_left_alone(log_output):
    logger, stream = log_output
    logger.info("Savings computed for agreement %s: status_code=%s", 7, 200)
    assert stream.getvalue().strip().endswith("Savings computed for agreement 7: status_code=200")


def test_the_redaction_filter_is_on_every_configured_handler(settings):
    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact" in handler.get("filters", []), name
