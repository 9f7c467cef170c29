from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.executive_dashboard, name="executive_dashboard"),
    path("dashboard/agreements.csv", views.executive_dashboard_csv, name="executive_dashboard_csv"),
    path("dashboard/trend.csv", views.executive_trend_csv, name="executive_trend_csv"),
    path("dashboard/agreements/<int:pk>/", views.executive_agreement, name="executive_agreement"),
    path(
        "dashboard/agreements/<int:pk>/<slug:table>.csv",
        views.executive_agreement_csv,
        name="executive_agreement_csv",
    ),
    path("workspace/", views.admin_workspace, name="admin_workspace"),
    path("workspace/<slug:table>.csv", views.admin_workspace_csv, name="admin_workspace_csv"),
    path("me/", views.physician_home, name="physician_home"),
    path("me/<slug:table>.csv", views.physician_home_csv, name="physician_home_csv"),
]
