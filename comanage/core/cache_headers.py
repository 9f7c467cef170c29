"""Nothing a signed-in user sees, and nothing the API answers, is kept by a cache.

Pages, CSV exports and PDFs name physicians and carry payments; API responses carry the same
data for a token. ``Cache-Control: no-store`` keeps them out of the browser's disk cache, a
shared proxy and the back button of a shared workstation after sign-out.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from .http import is_api


class NoStoreMiddleware:
    """``no-store`` on every response to a signed-in request and on every ``/api/`` response.

    Sits after WhiteNoise, so static files (served before this runs) keep their long caching.
    A response that declares itself ``public`` (Swagger UI's own script and style files) keeps
    its header: it carries nothing of anyone's.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "public" in response.get("Cache-Control", ""):
            return response
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if signed_in or is_api(request):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
