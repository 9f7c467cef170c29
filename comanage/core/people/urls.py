"""People and SSO pages, mounted under /o/<org_slug>/ (from ``comanage.core.urls``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("people/", views.people_list, name="people_list"),
    path("people/invite/", views.people_invite, name="people_invite"),
    path("people/<int:membership_pk>/", views.member_detail, name="member_detail"),
    path(
        "people/invitations/<int:invitation_pk>/", views.invitation_detail, name="invitation_detail"
    ),
    path("people/sso/", views.sso_settings, name="sso_settings"),
    path("people/sso/test/", views.sso_test, name="sso_test"),
    path("settings/", views.organization_settings, name="organization_settings"),
    path("settings/logo/", views.organization_logo, name="organization_logo"),
]
