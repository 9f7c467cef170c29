"""Savings pages, mounted at /o/<org_slug>/."""

from django.urls import path

from . import views, views_items

A = "agreements/<int:agreement_pk>/savings/"

urlpatterns = [
    path("savings/", views.savings_home, name="savings_home"),
    path("savings/items/", views_items.item_list, name="savings_items"),
    path("savings/items/imports/", views_items.item_imports, name="savings_item_imports"),
    path(
        "savings/items/imports/<int:import_pk>/",
        views_items.item_import_detail,
        name="savings_item_import",
    ),
    path(
        "savings/items/imports/<int:import_pk>/confirm/",
        views_items.item_import_confirm,
        name="savings_item_import_confirm",
    ),
    path(
        "savings/items/imports/<int:import_pk>/discard/",
        views_items.item_import_discard,
        name="savings_item_import_discard",
    ),
    path("savings/templates/<str:kind>-columns.csv", views.column_docs, name="savings_column_docs"),
    path("savings/templates/<str:kind>.csv", views.column_template, name="savings_template"),
    path(A, views.agreement_savings, name="savings_agreement"),
    path(A + "calculate/", views.calculation_start, name="savings_calculate"),
    path(A + "jobs/<int:job_id>/", views.savings_job, name="savings_job"),
    path(
        A + "calculations/<int:calculation_pk>/",
        views.calculation_detail,
        name="savings_calculation",
    ),
    path(
        A + "calculations/<int:calculation_pk>/history/",
        views.calculation_history,
        name="savings_calculation_history",
    ),
    path(
        A + "calculations/<int:calculation_pk>/opportunities.csv",
        views.opportunities_csv,
        name="savings_opportunities_csv",
    ),
    path(
        A + "calculations/<int:calculation_pk>/physicians.csv",
        views.physicians_csv,
        name="savings_physicians_csv",
    ),
    path(A + "opportunities/", views.opportunity_list, name="savings_opportunities"),
    path(
        A + "opportunities/<int:opportunity_pk>/edit/",
        views.opportunity_edit,
        name="savings_opportunity_edit",
    ),
    path(
        A + "opportunities/<int:opportunity_pk>/history/",
        views.opportunity_history,
        name="savings_opportunity_history",
    ),
    path(A + "imports/", views.import_list, name="savings_imports"),
    path(A + "imports/<int:import_pk>/", views.import_detail, name="savings_import"),
    path(
        A + "imports/<int:import_pk>/confirm/", views.import_confirm, name="savings_import_confirm"
    ),
    path(
        A + "imports/<int:import_pk>/discard/", views.import_discard, name="savings_import_discard"
    ),
    path(A + "imports/<int:import_pk>/file/", views.import_file, name="savings_import_file"),
    path(
        A + "imports/<int:import_pk>/history/", views.import_history, name="savings_import_history"
    ),
    path(A + "analysis/", views.analysis, name="savings_analysis"),
    path(A + "analysis/propose/", views.analysis_propose, name="savings_analysis_propose"),
    path(A + "flags/", views.flag_list, name="savings_flags"),
    path(A + "flags/<int:flag_pk>/terminate/", views.flag_terminate, name="savings_flag_terminate"),
]
