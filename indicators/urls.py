"""Indicator pages, mounted at /o/<org_slug>/."""

from django.urls import path

from . import views, views_results_import

A = "agreements/<int:agreement_pk>/indicators/"

urlpatterns = [
    path("indicators/", views.indicator_home, name="indicator_home"),
    path("indicators/library/", views.template_library, name="indicator_library"),
    path(
        "indicators/results-imports/",
        views_results_import.result_imports,
        name="indicator_result_imports",
    ),
    path(
        "indicators/results-imports/<int:import_pk>/",
        views_results_import.result_import_detail,
        name="indicator_result_import",
    ),
    path(
        "indicators/results-imports/<int:import_pk>/confirm/",
        views_results_import.result_import_confirm,
        name="indicator_result_import_confirm",
    ),
    path(
        "indicators/results-imports/<int:import_pk>/discard/",
        views_results_import.result_import_discard,
        name="indicator_result_import_discard",
    ),
    path(A, views.agreement_indicators, name="indicator_agreement"),
    path(A + "new/", views.definition_create, name="indicator_definition_create"),
    path(
        A + "from-template/",
        views.definition_from_template,
        name="indicator_definition_from_template",
    ),
    path(A + "criteria-row/", views.criteria_row, name="indicator_criteria_row"),
    path(A + "<int:pk>/edit/", views.definition_edit, name="indicator_definition_edit"),
    path(A + "<int:pk>/history/", views.definition_history, name="indicator_definition_history"),
    path(A + "<int:pk>/results/new/", views.result_create, name="indicator_result_create"),
    path(A + "<int:pk>/benchmarks/new/", views.benchmark_create, name="indicator_benchmark_create"),
    path(
        A + "<int:pk>/action-plans/new/",
        views.action_plan_create,
        name="indicator_action_plan_create",
    ),
    path(A + "action-plans/<int:plan_pk>/", views.action_plan_detail, name="indicator_action_plan"),
    path(A + "results/<int:result_pk>/", views.result_detail, name="indicator_result"),
    path(A + "results/<int:result_pk>/fhir/", views.result_fhir, name="indicator_result_fhir"),
    path(A + "results/<int:result_pk>/cases/", views.result_cases, name="indicator_result_cases"),
    path(
        A + "results/<int:result_pk>/cases.csv",
        views.result_cases_csv,
        name="indicator_result_cases_csv",
    ),
    path(A + "import/", views.import_start, name="indicator_import"),
    path(A + "import/template.csv", views.import_template_csv, name="indicator_import_template"),
    path(A + "imports/<int:import_pk>/", views.import_detail, name="indicator_import_detail"),
    path(A + "imports/<int:import_pk>/run/", views.import_confirm, name="indicator_import_confirm"),
    path(
        A + "imports/<int:import_pk>/discard/",
        views.import_discard,
        name="indicator_import_discard",
    ),
]
