"""Helpers for passing the two-factor gate in tests.

Other suites run with ``COMANAGE_REQUIRE_2FA = False`` (comanage/settings/test.py); a test that
switches it on and needs a signed-in administrator, counsel or CEO calls::

    client.force_login(user)
    pass_two_factor(client, user)     # enrols a confirmed TOTP device and verifies the session

``totp_code(device)`` gives the code an authenticator app would show now (``offset_steps=1``: the
next one, for a second verification inside the same 30 s, since a code is accepted only once).
"""

from __future__ import annotations

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from comanage.core.security.otp import VERIFIED_AT_SESSION_KEY


def enrol_device(user) -> TOTPDevice:  # type: ignore[no-untyped-def]
    """A confirmed TOTP device for ``user`` (as after scanning the QR code)."""
    return TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)


def totp_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset_steps)
    return f"{value:0{device.digits}d}"


def pass_two_factor(
    client: Client,
    user,
    device: TOTPDevice | None = None,  # type: ignore[no-untyped-def]
) -> TOTPDevice:
    """Mark ``client``'s (already signed-in) session as verified with ``user``'s device."""
    device = (
        device or TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol_device(user)
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
    return device
