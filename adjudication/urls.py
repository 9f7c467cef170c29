from django.urls import path

from . import views

urlpatterns = [
    path("adjudication/", views.run_list, name="adjudication_run_list"),
    path(
        "adjudication/years/<int:programme_year_id>/run/",
        views.run_start,
        name="adjudication_run_start",
    ),
    path(
        "adjudication/years/<int:programme_year_id>/what-if/",
        views.what_if,
        name="adjudication_what_if",
    ),
    path("adjudication/runs/<int:run_id>/", views.run_detail, name="adjudication_run_detail"),
    path(
        "adjudication/runs/<int:run_id>/fmv-summary.pdf",
        views.run_fmv_pdf,
        name="adjudication_run_fmv_pdf",
    ),
    path(
        "adjudication/reports/<int:report_id>/",
        views.report_detail,
        name="adjudication_report_detail",
    ),
    path(
        "adjudication/reports/<int:report_id>/report.pdf",
        views.report_pdf,
        name="adjudication_report_pdf",
    ),
    path(
        "adjudication/reports/<int:report_id>/render/",
        views.report_rerender,
        name="adjudication_report_render",
    ),
    path(
        "adjudication/reports/<int:report_id>/verify/",
        views.report_verify,
        name="adjudication_report_verify",
    ),
    path(
        "adjudication/reports/<int:report_id>/payments/",
        views.payments,
        name="adjudication_payments",
    ),
    path(
        "adjudication/reports/<int:report_id>/payments.csv",
        views.payments_csv,
        name="adjudication_payments_csv",
    ),
    path(
        "adjudication/reports/<int:report_id>/payments/<int:line_id>/record/",
        views.payment_record,
        name="adjudication_payment_record",
    ),
    *[
        path(
            f"adjudication/reports/<int:report_id>/{action}/",
            view,
            {"action": action},
            name="adjudication_report_transition",
        )
        for action, view in views.TRANSITION_VIEWS.items()
    ],
    path("adjudication/counsel/", views.counsel_queue, name="counsel_queue"),
    path("adjudication/ceo/", views.ceo_queue, name="ceo_queue"),
    path("adjudication/statements/", views.statement_list, name="adjudication_statements"),
    path(
        "adjudication/statements/<int:statement_id>.pdf",
        views.statement_pdf,
        name="adjudication_statement_pdf",
    ),
]
