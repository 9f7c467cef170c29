"""Who is asking: the client's address behind the proxy, and the sign-in name as one key.

``X-Forwarded-For`` is believed only from the proxies listed in
``settings.COMANAGE_TRUSTED_PROXIES`` (addresses or networks; environment ``TRUSTED_PROXIES``).
From anyone else it is ignored, so a client cannot choose the address its failed sign-ins and
rate limits are counted against. Behind a trusted proxy the client is the right-most address
in the header that is not itself a trusted proxy: each proxy appends the address it saw, so
everything left of that was written by the client and proves nothing.

Used by django-axes (``AXES_CLIENT_IP_CALLABLE``: a lockout is per e-mail address *and* client
address, so an attacker failing sign-ins for someone locks out only themselves) and by the API
throttle for requests without a user.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def trusted_proxies() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "COMANAGE_TRUSTED_PROXIES", ()) or ()))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Any, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or from a trusted proxy its forwarded client."""
    meta = getattr(request, "META", {})
    remote = str(meta.get("REMOTE_ADDR") or "")
    networks = trusted_proxies()
    if not networks or not _trusted(_address(remote), networks):
        return remote
    hops = [h for h in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not written by a proxy of ours: stop believing the header here
        if not _trusted(address, networks):
            return str(address)
    return remote


def login_username(request: HttpRequest | None, credentials: dict[str, Any] | None = None) -> str:
    """The sign-in name as django-axes counts it: e-mail addresses are case-insensitive, so
    ``Alice@Hospital.org`` and ``alice@hospital.org`` share one count of failures."""
    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    value = (credentials or {}).get(field)
    if value is None and request is not None:
        value = getattr(request, "POST", {}).get(field)
    return str(value or "").strip().lower()
