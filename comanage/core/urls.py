from django.urls import include, path

from . import views

# Mounted under /o/<org_slug>/
org_urlpatterns = [
    path("", views.org_home, name="org_home"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/progress/", views.job_progress, name="job_progress"),
    path("jobs/<int:job_id>/errors.csv", views.job_errors_csv, name="job_errors_csv"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("", include("comanage.core.people.urls")),
]
