"""URLs. Organization pages live under /o/<org_slug>/, the API under /api/v1/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from comanage.core import api_urls as core_api_urls
from comanage.core import api_views
from comanage.core import urls as core_urls
from comanage.core import views as core_views
from comanage.core.api_docs import docs_page
from comanage.core.security import oidc as security_oidc
from comanage.core.security import views as security_views

# Every app contributes organization pages and API routes; the order is the menu's.
APPS = ["agreements", "indicators", "savings", "adjudication"]

org_patterns: list[URLPattern | URLResolver] = list(core_urls.org_urlpatterns)
org_patterns.append(path("", include("comanage.workspaces.urls")))
api_org_patterns = [path("", include(core_api_urls.org_urlpatterns))]
for app in APPS:
    org_patterns.append(path("", include(f"{app}.urls")))
    api_org_patterns.append(path("", include(f"{app}.api_urls")))
org_patterns.append(path("", include("comanage.core.webhooks.urls")))
api_org_patterns.append(path("", include("comanage.core.webhooks.api_urls")))

auth_patterns = [
    path("login/", core_views.public_view(security_views.LoginView.as_view()), name="login"),
    path(
        "oidc/authenticate/",
        core_views.public_view(security_oidc.SSOStartView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        core_views.public_view(security_oidc.SSOCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path(
        "security/2fa/setup/",
        core_views.public_view(security_views.otp_setup),
        name="security_otp_setup",
    ),
    path(
        "security/2fa/verify/",
        core_views.public_view(security_views.otp_verify),
        name="security_otp_verify",
    ),
    path("logout/", core_views.public_view(auth_views.LogoutView.as_view()), name="logout"),
    path(
        "password/change/",
        core_views.public_view(auth_views.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "password/change/done/",
        core_views.public_view(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        core_views.public_view(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "password/reset/done/",
        core_views.public_view(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        core_views.public_view(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        core_views.public_view(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("account/", include(auth_patterns)),
    path("account/tokens/", core_views.api_tokens, name="api_tokens"),
    path("o/<slug:org_slug>/", include(org_patterns)),
    path(
        "api/v1/organizations/", api_views.OrganizationListView.as_view(), name="api_organizations"
    ),
    path("api/v1/organizations/<slug:org_slug>/", include(api_org_patterns)),
    path("api/v1/", include(core_api_urls.user_urlpatterns)),
    path("api/schema/", core_views.public_view(SpectacularAPIView.as_view()), name="api_schema"),
    # The split view loads its start-up script from a URL instead of inline, and the assets
    # come from the drf-spectacular-sidecar package (no CDN): the docs work offline.
    path(
        "api/docs/",
        core_views.public_view(
            docs_page(SpectacularSwaggerSplitView.as_view(url_name="api_schema"))
        ),
        name="api_docs",
    ),
    path(
        "api/docs/assets/<str:name>",
        core_views.public_view(api_views.docs_asset),
        name="api_docs_asset",
    ),
    path("django-admin/", admin.site.urls),
    path("", include("comanage.core.people.site_urls")),  # invitation link, installation staff
]

handler400 = "comanage.core.views.bad_request"
handler403 = "comanage.core.views.permission_denied"
handler404 = "comanage.core.views.page_not_found"
handler500 = "comanage.core.views.server_error"
