"""What a signature signs, and the rule that counsel signs only what they have opened (issue 20).

Counsel's approval and the CEO's authorisation are signatures. Before either, the person sees
what they sign and for how much (:func:`signing_summary`, on the button, in the confirmation
and in the second-factor prompt).

**Opened before approved.** Counsel may approve a report only after opening it, its PDF or its
summary page:

- on the web, *in the same session*: opening the report page or its PDF marks the session
  (:func:`report_open_record`), and the approve view refuses a session that has not
  (:func:`report_opened_in_session`);
- through the API, which has no session, *by the same person*: fetching the report
  (``GET …/reports/<id>/``) or its PDF (``GET …/reports/<id>/pdf/``), on the web or through
  the API, records a ``report.opened`` business event for that person and that report, and the
  API approves only a report its caller has opened (:func:`report_opened_by`).

Each opening by someone who may approve a report awaiting approval is audited once per person
and report (the ``report.opened`` event), so the trail shows that counsel read what they
approved.
"""

from __future__ import annotations

from typing import Any

from comanage.core.audit import event_record
from comanage.core.models import BusinessEvent, Membership, User
from comanage.core.money import format_money
from comanage.core.permissions import membership_can

from .models import AdjudicationReport, ReportStatus

SESSION_OPENED = "adjudication_reports_opened"
OPENED_EVENT = "report.opened"

#: What each signing action does, in words, for the button and the prompts.
SIGNING_VERBS = {
    "approve": "Approve",
    "authorise": "Authorise payment of",
}


class ReportNotOpened(Exception):
    """Approval refused: the report has not been opened (status 409 on the web and the API)."""

    status_code = 409
    field = None

    def __init__(self) -> None:
        super().__init__(
            "Open the report (its PDF or its summary page) before approving it: "
            "you approve what you have read."
        )


def report_total(report: AdjudicationReport) -> str:
    """The report's total to pay, formatted (``$123,456.78``)."""
    value = report.run.read.totals.total_to_pay
    return format_money(value) if value is not None else "—"


def signing_summary(*, report: AdjudicationReport, action: str) -> str:
    """One sentence saying what the signature signs and for how much, e.g. "Approve the
    adjudication report v2 of Orthopedic co-management, 2025: total to pay $84,250.00"."""
    verb = SIGNING_VERBS.get(action, action.capitalize())
    what = (
        f"the adjudication report v{report.version} of {report.agreement.name}, "
        f"{report.programme_year.label}"
    )
    return f"{verb} {what}: total to pay {report_total(report)}"


def _may_approve(user: User, report: AdjudicationReport) -> bool:
    membership = Membership.objects.filter(
        user=user, organization=report.organization, is_active=True
    ).first()
    return membership_can(membership, "report.approve")


def report_open_record(*, report: AdjudicationReport, user: Any, session: Any = None) -> None:
    """``user`` opened ``report`` (its page or its PDF): mark the session, and audit the
    first opening by someone who may approve it while it awaits approval."""
    if session is not None:
        opened = list(session.get(SESSION_OPENED, []))
        if report.pk not in opened:
            session[SESSION_OPENED] = [*opened, report.pk][-200:]
    if (
        user is None
        or not getattr(user, "is_authenticated", False)
        or report.status != ReportStatus.SUBMITTED
        or report_opened_by(report=report, user=user)
        or not _may_approve(user, report)
    ):
        return
    event_record(
        organization=report.organization,
        name=OPENED_EVENT,
        actor=user,
        obj=report,
        summary=f"{report}: opened before approval",
        data={"version": report.version},
    )


def report_opened_in_session(*, report: AdjudicationReport, session: Any) -> bool:
    return report.pk in (session.get(SESSION_OPENED) or [])


def report_opened_by(*, report: AdjudicationReport, user: Any) -> bool:
    """True when ``user`` has opened ``report`` (web or API; the ``report.opened`` event)."""
    return BusinessEvent.objects.filter(
        organization=report.organization,
        name=OPENED_EVENT,
        actor=user,
        object_type=AdjudicationReport._meta.label,
        object_id=str(report.pk),
    ).exists()
