"""The real URLs plus two signing views, for the step-up tests."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from comanage.core.security import otp_step_up, require_recent_otp
from comanage.urls import handler403, handler404, handler500
from comanage.urls import urlpatterns as base_patterns

SIGNED: list[dict] = []


@login_required
@otp_step_up()
def sign_with_decorator(request: HttpRequest) -> HttpResponse:
    SIGNED.append({k: request.POST.getlist(k) for k in request.POST})
    return JsonResponse({"signed": True})


@login_required
def sign_with_helper(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if (response := require_recent_otp(request, max_age_seconds=0)) is not None:
            return response
        SIGNED.append({k: request.POST.getlist(k) for k in request.POST})
        return JsonResponse({"signed": True})
    if (response := require_recent_otp(request)) is not None:
        return response
    return HttpResponse("the sign page")


urlpatterns = [
    path("test-sign/decorated/", sign_with_decorator),
    path("test-sign/helper/", sign_with_helper),
    *base_patterns,
]
__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
