"""Answer ``/healthz`` for the container's own health check, whatever ALLOWED_HOSTS says.

Docker's health check runs inside the container and calls ``http://127.0.0.1:8000/healthz``;
production's ALLOWED_HOSTS lists only the public name, so CommonMiddleware would answer 400.
This middleware (before CommonMiddleware) answers exactly that path, for a loopback Host only,
with the health view itself: no other page is reachable through a loopback Host, and nothing
the health view returns depends on the Host (it builds no URLs).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
HEALTH_PATH = "/healthz"


class HealthCheckHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH and request.method in ("GET", "HEAD"):
            domain, _port = split_domain_port(request.META.get("HTTP_HOST", ""))
            if domain in LOOPBACK_HOSTS:
                from comanage.core.views import healthz

                return healthz(request)
        return self.get_response(request)
