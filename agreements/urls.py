from django.urls import path

from . import views, views_portal, views_roster

urlpatterns = [
    path("agreements/", views.agreement_list, name="agreement_list"),
    path("agreements/new/", views.agreement_create, name="agreement_create"),
    path("agreements/<int:pk>/", views.agreement_detail, name="agreement_detail"),
    path(
        "agreements/<int:pk>/setup/",
        views.agreement_setup_overview,
        name="agreement_setup_overview",
    ),
    path("agreements/<int:pk>/setup/<slug:step>/", views.agreement_setup, name="agreement_setup"),
    path(
        "agreements/<int:pk>/transition/", views.agreement_transition, name="agreement_transition"
    ),
    path("agreements/<int:pk>/amendments/new/", views.amendment_create, name="amendment_create"),
    path(
        "agreements/<int:agreement_pk>/participants/new/",
        views.participation_form,
        name="participation_create",
    ),
    path("agreements/<int:agreement_pk>/fmv/new/", views.fmv_form, name="fmv_create"),
    path("agreements/<int:agreement_pk>/duties/new/", views.duty_form, name="duty_create"),
    path("agreements/<int:agreement_pk>/committee/", views.committee_list, name="committee_list"),
    path(
        "agreements/<int:agreement_pk>/committee/new/",
        views.committee_form,
        name="committee_create",
    ),
    path(
        "agreements/<int:agreement_pk>/documents/new/",
        views.document_upload,
        name="document_upload",
    ),
    path("agreements/<int:agreement_pk>/timeline/", views.milestone_list, name="milestone_list"),
    path(
        "agreements/<int:agreement_pk>/timeline/new/", views.milestone_form, name="milestone_create"
    ),
    path("agreement-terms/<int:pk>/", views.terms_detail, name="terms_detail"),
    path("programme-years/<int:pk>/fees/", views.fee_schedule, name="fee_schedule"),
    path("participations/<int:pk>/edit/", views.participation_form, name="participation_edit"),
    path("fmv-opinions/<int:pk>/edit/", views.fmv_form, name="fmv_edit"),
    path("duties/<int:pk>/edit/", views.duty_form, name="duty_edit"),
    path("committee/<int:pk>/edit/", views.committee_form, name="committee_edit"),
    path("milestones/<int:pk>/edit/", views.milestone_form, name="milestone_edit"),
    path("documents/<int:pk>/download/", views.document_download, name="document_download"),
    path("practices/", views.practice_list, name="practice_list"),
    path("practices/new/", views.practice_form, name="practice_create"),
    path("practices/<int:pk>/edit/", views.practice_form, name="practice_edit"),
    path("physicians/", views.physician_list, name="physician_list"),
    path("physicians/new/", views.physician_form, name="physician_create"),
    path("physicians/roster/", views_roster.roster_imports, name="roster_imports"),
    path(
        "physicians/roster/<int:import_pk>/",
        views_roster.roster_import_detail,
        name="roster_import",
    ),
    path(
        "physicians/roster/<int:import_pk>/confirm/",
        views_roster.roster_import_confirm,
        name="roster_import_confirm",
    ),
    path(
        "physicians/roster/<int:import_pk>/discard/",
        views_roster.roster_import_discard,
        name="roster_import_discard",
    ),
    path("physicians/<int:pk>/", views.physician_detail, name="physician_detail"),
    path("physicians/<int:pk>/edit/", views.physician_form, name="physician_edit"),
    path("timesheets/", views.timesheet_list, name="timesheet_list"),
    path("timesheets/<int:pk>/", views.timesheet_detail, name="timesheet_detail"),
    path("compliance/", views.flag_list, name="flag_list"),
    path("compliance/scan/", views.compliance_scan_now, name="compliance_scan_now"),
    path("compliance/<int:pk>/", views.flag_detail, name="flag_detail"),
    path("history/<slug:kind>/<int:pk>/", views.record_history, name="record_history"),
    path("portal/", views_portal.physician_portal, name="physician_portal"),
]
