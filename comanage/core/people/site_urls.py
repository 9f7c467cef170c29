"""Routes outside any organization: the invitation link and the installation staff's pages
(mounted at the site root from ``comanage.urls``)."""

from django.urls import path

from comanage.core.installation import views as installation_views

from . import views

urlpatterns = [
    path("account/invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path(
        "installation/organizations/",
        installation_views.organizations,
        name="installation_organizations",
    ),
    path(
        "installation/organizations/<slug:slug>/",
        installation_views.organization_detail,
        name="installation_organization",
    ),
]
