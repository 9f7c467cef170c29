from django.urls import URLPattern, URLResolver, include, path

from . import mapping_views, views

# Mounted under /o/<org_slug>/
org_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.org_home, name="org_home"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/progress/", views.job_progress, name="job_progress"),
    path("jobs/<int:job_id>/errors.csv", views.job_errors_csv, name="job_errors_csv"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("import-mappings/", mapping_views.import_mapping_list, name="import_mappings"),
    path(
        "import-mappings/<int:pk>/",
        mapping_views.import_mapping_detail,
        name="import_mapping_detail",
    ),
    path(
        "import-mappings/<int:pk>/edit/",
        mapping_views.import_mapping_edit_view,
        name="import_mapping_edit",
    ),
    path(
        "import-mappings/<int:pk>/delete/",
        mapping_views.import_mapping_delete_view,
        name="import_mapping_delete",
    ),
    path("", include("comanage.core.people.urls")),
]
