"""Adjudication services: run the calculation, move reports through their lifecycle, freeze and
verify them, record payments, and model what-if scenarios (spec section 5).

Every function is keyword-only and named ``<entity>_<action>``; views, the API and tasks call
these and nothing else writes adjudication rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from agreements import selectors as agreements_selectors
from agreements.models import (
    AgreementKind,
    AgreementTerms,
    ComplianceFlag,
    FMVOpinion,
    ProgrammeYear,
)
from agreements.services.fmv import fmv_opinion_figures
from comanage.core.audit import event_record
from comanage.core.display import format_date
from comanage.core.inputs import parse_money, refuse_nul
from comanage.core.models import Membership, User
from comanage.core.money import ZERO, format_money, to_decimal
from comanage.core.permissions import membership_can, roles_with
from comanage.core.versioning import data_version_bump
from indicators.overrides import incentive_overrides_parse
from indicators.selectors import definitions_in_force
from indicators.services import incentive_for_year
from savings.overrides import agreed_item_codes, savings_overrides_parse
from savings.services import savings_for_year

from .calculation import (
    CO_MANAGEMENT,
    SHARED_SAVINGS,
    ParticipantShare,
    Payload,
    figures_diff,
    jsonable,
    payload_assemble,
)
from .models import (
    FROZEN_STATUSES,
    AdjudicationReport,
    CalculationRun,
    Distribution,
    PaymentKind,
    PaymentLine,
    ReportStatus,
    ReportTransition,
)
from .read_models import RunRead, RunTotals

log = logging.getLogger(__name__)


class AdjudicationError(Exception):
    """A refusal the user should read (wrong state, missing data).

    ``field`` names the input at fault when there is one (the API reports it, with 400: bad
    input, not a conflict with the record's state)."""

    status_code = 400

    def __init__(self, *args: Any, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field
        if field is not None:
            self.status_code = 400


class CalculationUnavailable(AdjudicationError):
    status_code = 409


class TransitionForbidden(AdjudicationError):
    status_code = 403


class TransitionInvalid(AdjudicationError):
    status_code = 409


class ApprovalRefused(AdjudicationError):
    status_code = 409

    def __init__(self, reasons: list[str]):
        super().__init__("Approval refused: " + " ".join(reasons))
        self.reasons = reasons


class PaymentRefused(AdjudicationError):
    status_code = 409


# --------------------------------------------------------------------------------------------
# Gathering the inputs (the other apps' services)


def _fmv_opinion(programme_year: ProgrammeYear) -> FMVOpinion | None:
    return agreements_selectors.fmv_opinion_covering(
        agreement=programme_year.agreement, start=programme_year.start, end=programme_year.end
    )


def _fmv_dict(programme_year: ProgrammeYear) -> dict[str, Any] | None:
    """The FMV opinion covering the year as the run records it (``RunRead.fmv`` reads it)."""
    fmv = _fmv_opinion(programme_year)
    return None if fmv is None else jsonable(fmv_opinion_figures(fmv))


def _terms(programme_year: ProgrammeYear) -> AgreementTerms:
    try:
        return agreements_selectors.terms_for_year(programme_year=programme_year)
    except AgreementTerms.DoesNotExist as exc:  # the selector's message names the year
        raise CalculationUnavailable(str(exc)) from exc


def _terms_dict(terms: AgreementTerms) -> dict[str, Any]:
    skip = {"id", "organization", "agreement", "created_by", "created_at", "reason"}
    return jsonable(
        {f.name: getattr(terms, f.name) for f in terms._meta.concrete_fields if f.name not in skip}
    )


def _context(programme_year: ProgrammeYear, terms: AgreementTerms) -> dict[str, Any]:
    agreement = programme_year.agreement
    return {
        "agreement": {
            "id": agreement.pk,
            "name": agreement.name,
            "kind": agreement.kind,
            "practice": agreement.practice.name,
            "service_line": agreement.service_line_label,
            "term_start": agreement.term_start,
            "term_end": agreement.term_end,
        },
        "programme_year": {
            "id": programme_year.pk,
            "number": programme_year.number,
            "start": programme_year.start,
            "end": programme_year.end,
            "label": programme_year.label,
        },
        "terms": _terms_dict(terms),
    }


def _participants(programme_year: ProgrammeYear) -> list[Any]:
    return list(agreements_selectors.participants_for_year(programme_year=programme_year))


def _shares(programme_year: ProgrammeYear, participations: list[Any]) -> list[ParticipantShare]:
    shares = []
    for p in participations:
        start = max(p.join_date, programme_year.start)
        end = min(p.end_date or programme_year.end, programme_year.end)
        days = max(0, (end - start).days + 1)
        shares.append(
            ParticipantShare(
                physician_id=p.physician_id,
                last_name=p.physician.last_name,
                first_name=p.physician.first_name,
                participation_days=days,
                year_days=programme_year.days,
                ownership_pct=p.ownership_pct,
                npi=p.physician.npi,
            )
        )
    return shares


def calculation_gather(
    *, programme_year: ProgrammeYear, overrides: dict[str, Any] | None = None
) -> Payload:
    """Gather the frozen terms and the year's data, call the engines, assemble the payload.

    Writes nothing: the official run stores what this returns, a scenario only shows it.
    """
    terms = _terms(programme_year)
    participations = _participants(programme_year)
    common: dict[str, Any] = {
        "rules_version": settings.COMANAGE_RULES_VERSION,
        "context": _context(programme_year, terms),
        "fmv": _fmv_dict(programme_year),
    }
    if programme_year.agreement.kind == AgreementKind.CO_MANAGEMENT:
        try:
            incentive = incentive_for_year(programme_year=programme_year, overrides=overrides)
            schedule = agreements_selectors.fixed_fee_schedule(programme_year=programme_year)
        except ValueError as exc:  # missing results, invalid terms: say which
            raise CalculationUnavailable(f"The incentive cannot be calculated: {exc}") from exc
        return payload_assemble(
            kind=CO_MANAGEMENT,
            incentive=incentive.result,
            incentive_inputs=incentive.inputs,
            fixed_fee_schedule=schedule,
            fixed_fee_inputs={
                "policy": terms.hours_shortfall_policy,
                "annual_fixed_fee": terms.annual_fixed_fee,
            },
            participants=_shares(programme_year, participations),
            distribution_method=terms.distribution_method or "per_capita",
            **common,
        )
    try:
        savings = savings_for_year(programme_year=programme_year, overrides=overrides)
    except ValueError as exc:  # SavingsInputError: missing price file, bad data
        raise CalculationUnavailable(f"The savings cannot be calculated: {exc}") from exc
    mapping: dict[str, int] = {}
    for p in participations:
        mapping[str(p.physician_id)] = p.physician_id
        mapping[p.physician.npi] = p.physician_id
    return payload_assemble(
        kind=SHARED_SAVINGS,
        savings=savings.result,
        savings_inputs=savings.inputs,
        physician_ids_by_engine_id=mapping,
        **common,
    )


# --------------------------------------------------------------------------------------------
# Runs


@dataclass(frozen=True)
class RunOutcome:
    run: CalculationRun
    created: bool
    report: AdjudicationReport | None


def _diff_basis(run_or_payload: Any) -> dict[str, Any]:
    return {
        "inputs": run_or_payload.inputs,
        "figures": run_or_payload.figures,
        "totals": run_or_payload.results,
        "flags": run_or_payload.flags,
    }


def calculation_record(
    *, programme_year: ProgrammeYear, payload: Payload, user: User | None
) -> RunOutcome:
    """Store a payload as a new run version, or reuse the version whose hash matches.

    A new version gets a diff against the previous one and a new draft report; a draft or
    returned report of the year is superseded by it, a frozen (approved) one is left exactly
    as it is and the new report points to it as the version it corrects.
    """
    digest = payload.calculation_hash
    existing = CalculationRun.objects.filter(
        programme_year=programme_year, calculation_hash=digest
    ).first()
    if existing is not None:
        return RunOutcome(run=existing, created=False, report=getattr(existing, "report", None))
    try:
        with transaction.atomic():
            previous = (
                CalculationRun.objects.select_for_update()
                .filter(programme_year=programme_year)
                .order_by("-version")
                .first()
            )
            version = (previous.version + 1) if previous else 1
            run = CalculationRun.objects.create(
                organization=programme_year.organization,
                agreement=programme_year.agreement,
                programme_year=programme_year,
                version=version,
                kind=payload.kind,
                rules_version=payload.rules_version,
                inputs=jsonable(payload.inputs),
                figures=jsonable(payload.figures),
                flags=jsonable(payload.flags),
                results=jsonable(payload.results),
                calculation_hash=digest,
                previous=previous,
                diff=figures_diff(_diff_basis(previous), _diff_basis(payload)) if previous else [],
                created_by=user,
            )
            Distribution.objects.bulk_create(
                [
                    Distribution(
                        organization=programme_year.organization,
                        run=run,
                        physician_id=line.physician_id,
                        component=line.component,
                        entitlement=line.entitlement,
                        weight=line.weight,
                        amount=line.amount,
                        note=line.note[:300],
                        position=position,
                    )
                    for position, line in enumerate(payload.distributions)
                ]
            )
            report = _report_create(run=run, user=user)
    except IntegrityError:
        # Someone stored the same figures a moment ago: theirs is the run.
        existing = CalculationRun.objects.filter(
            programme_year=programme_year, calculation_hash=digest
        ).first()
        if existing is None:
            raise
        return RunOutcome(run=existing, created=False, report=getattr(existing, "report", None))
    event_record(
        organization=programme_year.organization,
        name="calculation.recorded",
        actor=user,
        obj=run,
        summary=f"{run} recorded",
        data={"hash": digest, "version": version},
    )
    return RunOutcome(run=run, created=True, report=report)


def _refuse_final_before_year_end(programme_year: ProgrammeYear) -> None:
    """The official run is the year's final calculation: refused (ValidationError naming
    ``programme_year``) until the year has ended; what-if scenarios run any time."""
    from agreements.services import programme_year_refuse_final_run

    programme_year_refuse_final_run(programme_year=programme_year)


def adjudication_run(
    *, programme_year: ProgrammeYear, user: User | None, overrides: dict[str, Any] | None = None
) -> RunOutcome:
    """Run the official calculation for a programme year (idempotent on unchanged inputs)."""
    if overrides:
        raise AdjudicationError("An official run takes no overrides; use a what-if scenario.")
    _refuse_final_before_year_end(programme_year)
    payload = calculation_gather(programme_year=programme_year)
    return calculation_record(programme_year=programme_year, payload=payload, user=user)


def adjudication_run_start(*, programme_year: ProgrammeYear, user: User | None):
    """Queue the run as a background job; two people starting it at once get one job."""
    from comanage.core.jobs import job_create, job_enqueue

    from .tasks import adjudication_run_task

    _refuse_final_before_year_end(programme_year)
    job = job_create(
        organization=programme_year.organization,
        kind="adjudication run",
        user=user,
        params={"programme_year_id": programme_year.pk},
        dedupe_key=f"adjudication-run:{programme_year.pk}",
    )
    job_enqueue(job=job, task=adjudication_run_task)
    return job


# --------------------------------------------------------------------------------------------
# Reports


def _compliance_snapshot(programme_year: ProgrammeYear) -> list[dict[str, Any]]:
    from django.db.models import Q

    flags = (
        ComplianceFlag.objects.filter(agreement_id=programme_year.agreement_id)
        .filter(Q(programme_year__isnull=True) | Q(programme_year=programme_year))
        .select_related("resolved_by", "physician")
        .order_by("opened_at", "pk")
    )
    return [
        {
            "kind": f.kind,
            "severity": f.severity,
            "blocking": f.blocking,
            "message": f.message,
            "physician": str(f.physician) if f.physician else "",
            "opened_at": f.opened_at.isoformat() if f.opened_at else None,
            "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
            "resolved_by": str(f.resolved_by) if f.resolved_by else "",
            "resolution_note": f.resolution_note,
        }
        for f in flags
    ]


def _report_create(*, run: CalculationRun, user: User | None) -> AdjudicationReport:
    live = (
        AdjudicationReport.objects.select_for_update()
        .filter(programme_year=run.programme_year)
        .exclude(status=ReportStatus.SUPERSEDED)
        .order_by("-version")
    )
    supersedes = None
    for old in live:
        if old.status in FROZEN_STATUSES:
            supersedes = supersedes or old
        else:
            # An unapproved report is replaced by the new version (it stays readable).
            AdjudicationReport.objects.filter(pk=old.pk, status=old.status).update(
                status=ReportStatus.SUPERSEDED
            )
            _transition_log(
                report=old,
                from_status=old.status,
                to_status=ReportStatus.SUPERSEDED,
                user=user,
                at=timezone.now(),
                comment=f"Superseded by calculation version {run.version}.",
            )
            supersedes = supersedes or old
    version = (
        AdjudicationReport.objects.filter(programme_year=run.programme_year).aggregate(
            m=Max("version")
        )["m"]
        or 0
    ) + 1
    return AdjudicationReport.objects.create(
        organization=run.organization,
        run=run,
        agreement=run.agreement,
        programme_year=run.programme_year,
        version=version,
        supersedes=supersedes,
        calculation_hash=run.calculation_hash,
        created_by=user,
        compliance_snapshot=_compliance_snapshot(run.programme_year),
    )


def _name(user: User | None) -> str:
    if user is None:
        return "System"
    return user.get_full_name() or user.email


@dataclass(frozen=True)
class TransitionRule:
    action: str
    label: str
    from_statuses: tuple[str, ...]
    to_status: str
    permission: str
    comment_required: bool = False


TRANSITIONS: dict[str, TransitionRule] = {
    "review": TransitionRule(
        "review",
        "Start review",
        (ReportStatus.DRAFT, ReportStatus.RETURNED),
        ReportStatus.IN_REVIEW,
        "report.prepare",
    ),
    "submit": TransitionRule(
        "submit",
        "Submit to counsel",
        (ReportStatus.IN_REVIEW,),
        ReportStatus.SUBMITTED,
        "report.prepare",
    ),
    "approve": TransitionRule(
        "approve", "Approve", (ReportStatus.SUBMITTED,), ReportStatus.APPROVED, "report.approve"
    ),
    "return": TransitionRule(
        "return",
        "Return with comments",
        (ReportStatus.SUBMITTED,),
        ReportStatus.RETURNED,
        "report.approve",
        comment_required=True,
    ),
    "authorise": TransitionRule(
        "authorise",
        "Authorise payment",
        (ReportStatus.APPROVED,),
        ReportStatus.AUTHORISED,
        "report.authorise",
    ),
}
# Who acts next, for the e-mail: the permission the next step needs.
NEXT_ACTOR: dict[str, str] = {
    ReportStatus.IN_REVIEW: "report.prepare",
    ReportStatus.SUBMITTED: "report.approve",
    ReportStatus.RETURNED: "report.prepare",
    ReportStatus.APPROVED: "report.authorise",
    ReportStatus.AUTHORISED: "payment.record",
}
#: Transitions that are signatures: counsel's approval and the CEO's authorisation ask for a
#: fresh second factor at the moment of signing.
SIGNING_ACTIONS = frozenset({"approve", "authorise"})

EVENT_NAMES = {
    "approve": "report.approved",
    "return": "report.returned",
    "authorise": "payment.authorised",
    "submit": "report.submitted",
    "review": "report.in_review",
}


def _membership(user: User | None, organization: Any) -> Membership | None:
    if user is None:
        return None
    return Membership.objects.filter(user=user, organization=organization, is_active=True).first()


def _transition_log(
    *,
    report: AdjudicationReport,
    from_status: str,
    to_status: str,
    user: User | None,
    at: dt.datetime,
    comment: str,
    membership: Membership | None = None,
) -> ReportTransition:
    """A report's step in its approval trail: who (name and role at the time), when, why."""
    return ReportTransition.objects.create(
        organization=report.organization,
        report=report,
        from_status=from_status,
        to_status=to_status,
        actor=user,
        actor_name=_name(user),
        actor_role=membership.get_role_display() if membership else "",
        at=at,
        comment=comment,
    )


def transitions_available(*, report: AdjudicationReport, user: User | None) -> list[TransitionRule]:
    membership = _membership(user, report.organization)
    return [
        rule
        for rule in TRANSITIONS.values()
        if report.status in rule.from_statuses and membership_can(membership, rule.permission)
    ]


def report_approval_blockers(*, report: AdjudicationReport) -> list[str]:
    """Why counsel cannot approve this report (spec 5), agreements' checks plus the run's."""
    programme_year = report.programme_year
    reasons: list[str] = []
    reasons += agreements_selectors.approval_blockers(programme_year=programme_year)
    run = report.run
    latest = (
        CalculationRun.objects.filter(programme_year=programme_year).order_by("-version").first()
    )
    if latest is None:
        reasons.append("No calculation run exists for this programme year.")
    elif latest.pk != run.pk:
        reasons.append(
            f"A newer calculation (version {latest.version}) exists; this report "
            f"is on version {run.version}."
        )
    if run.kind == CO_MANAGEMENT:
        # Against the opinion covering the year now (one signed since the run counts too).
        fmv = _fmv_opinion(programme_year)
        if fmv is not None:
            total = run.read.totals.total_compensation or ZERO
            maximum = to_decimal(fmv.total_max_annual)
            if total > maximum:
                reasons.append(
                    f"Fixed fee plus incentive ({total:,.2f}) exceeds the FMV "
                    f"maximum ({maximum:,.2f})."
                )
    elif not _has_price_file(run.read.savings_inputs):
        reasons.append("The programme year's price file is missing.")
    for flag in run.read.flags:
        if flag.blocking:
            reasons.append(f"Blocking flag from the calculation: {flag.message}")
    return list(dict.fromkeys(reasons))  # each reason once, in order


def _has_price_file(savings_inputs: Any) -> bool:
    """A price file is recorded in the savings inputs (any key naming prices with content)."""
    if not isinstance(savings_inputs, dict):
        return False
    for key, value in savings_inputs.items():
        if "price" in key.lower() and value not in (None, "", {}, []):
            return True
        if isinstance(value, dict) and _has_price_file(value):
            return True
    return False


def _notify(*, report: AdjudicationReport, permission: str, subject: str, body: str) -> None:
    roles = roles_with(permission)[0]
    emails = sorted(
        {
            m.user.email
            for m in Membership.objects.filter(
                organization=report.organization, role__in=roles, is_active=True
            ).select_related("user")
            if m.user.email and m.user.is_active
        }
    )
    if not emails:
        return

    def send() -> None:
        try:
            send_mail(subject, body, None, emails, fail_silently=False)
        except Exception:  # noqa: BLE001 - a mail outage must not undo the transition
            log.exception("could not send the notification for report %s", report.pk)

    transaction.on_commit(send)


def _transition_allowed(
    *, report: AdjudicationReport, action: str, user: User | None
) -> tuple[TransitionRule, Membership | None]:
    """The step ``action`` names and the user's membership; refused (409) for an unknown step
    and (403) for a role that cannot take it."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise TransitionInvalid(f"Unknown action '{action}'.")
    membership = _membership(user, report.organization)
    if not membership_can(membership, rule.permission):
        role = membership.get_role_display() if membership else "no role"
        raise TransitionForbidden(f"Your role ({role}) cannot {rule.label.lower()} a report.")
    return rule, membership


def report_transition(
    *, report: AdjudicationReport, action: str, user: User | None, comment: str = ""
) -> AdjudicationReport:
    """Move a report one step; refused for the wrong role (403) or the wrong state (409).

    The row is locked (``select_for_update``) and the status changed by a conditional UPDATE,
    so two people pressing the same button at once cannot both succeed.
    """
    rule, membership = _transition_allowed(report=report, action=action, user=user)
    comment = (comment or "").strip()
    if rule.comment_required and not comment:
        raise AdjudicationError("Comments are required when returning a report.", field="comment")
    with transaction.atomic():
        locked = AdjudicationReport.objects.select_for_update().get(pk=report.pk)
        if locked.status not in rule.from_statuses:
            raise TransitionInvalid(
                f"This report is {locked.get_status_display().lower()}; "
                f"'{rule.label}' is only possible when it is "
                + " or ".join(ReportStatus(s).label.lower() for s in rule.from_statuses)
                + "."
            )
        if action == "approve":
            reasons = report_approval_blockers(report=locked)
            if reasons:
                raise ApprovalRefused(reasons)
        now = timezone.now()
        changes: dict[str, Any] = {"status": rule.to_status}
        if action == "approve":
            changes.update(
                frozen_at=now,
                pdf=None,
                pdf_sha256="",
                pdf_rendered_at=None,
                compliance_snapshot=_compliance_snapshot(locked.programme_year),
            )
        elif locked.status not in FROZEN_STATUSES:
            changes["compliance_snapshot"] = _compliance_snapshot(locked.programme_year)
        updated = AdjudicationReport.objects.filter(pk=locked.pk, status=locked.status).update(
            **changes
        )
        if not updated:
            raise TransitionInvalid("Someone else changed this report a moment ago; reload it.")
        _transition_log(
            report=locked,
            from_status=locked.status,
            to_status=rule.to_status,
            user=user,
            at=now,
            comment=comment,
            membership=membership,
        )
        locked.refresh_from_db()
        if action == "authorise":
            payment_lines_create(report=locked)
        event_record(
            organization=locked.organization,
            name=EVENT_NAMES[action],
            actor=user,
            obj=locked,
            summary=f"{locked}: {rule.label.lower()}",
            data={
                "from": rule.from_statuses[0],
                "to": rule.to_status,
                "comment": comment,
                "calculation_hash": locked.calculation_hash,
            },
        )
        next_permission = NEXT_ACTOR.get(rule.to_status)
        if next_permission:
            _notify(
                report=locked,
                permission=next_permission,
                subject=f"[Comanage] {locked.agreement} {locked.programme_year.label}: "
                f"{locked.get_status_display().lower()}",
                body=f"{_name(user)} set the adjudication report for {locked.agreement} "
                f"({locked.programme_year.label}, version {locked.version}) to "
                f"'{locked.get_status_display()}'."
                + (f"\n\nComments:\n{comment}" if comment else "")
                + "\n\nIt now waits for you in Comanage.",
            )
        report_render_enqueue(report=locked)
    return locked


def report_render_enqueue(*, report: AdjudicationReport) -> None:
    from .tasks import report_render_task

    def send() -> None:
        try:
            report_render_task.delay(organization_id=report.organization_id, report_id=report.pk)
        except Exception:  # noqa: BLE001 - broker down: the page offers to render again
            log.warning("could not queue the PDF of report %s", report.pk)

    transaction.on_commit(send)


def report_render(*, report: AdjudicationReport) -> AdjudicationReport:
    """Render the report's PDF (and, once frozen, the physicians' statements) from stored rows.

    A frozen report's PDF is written once: the conditional UPDATE only fills an empty slot.
    """
    from . import pdf

    report = AdjudicationReport.objects.select_related(
        "run", "agreement", "programme_year", "organization"
    ).get(pk=report.pk)
    if report.is_frozen and report.pdf_sha256:
        return report
    content = pdf.report_pdf(report=report)
    digest = hashlib.sha256(content).hexdigest()
    query = AdjudicationReport.objects.filter(pk=report.pk, status=report.status)
    if report.is_frozen:
        query = query.filter(pdf_sha256="")
    query.update(pdf=content, pdf_sha256=digest, pdf_rendered_at=timezone.now())
    if report.is_frozen:
        statements_render(report=report)
    report.refresh_from_db()
    return report


def statements_render(*, report: AdjudicationReport) -> int:
    """One statement per physician of a frozen report; never rendered twice."""
    from . import pdf
    from .models import PhysicianStatement

    done = set(report.statements.values_list("physician_id", flat=True))
    created = 0
    for context in pdf.statement_contexts(report=report):
        if context["physician"]["id"] in done:
            continue
        content = pdf.render_statement(context)
        try:
            with transaction.atomic():
                PhysicianStatement.objects.create(
                    organization=report.organization,
                    report=report,
                    physician_id=context["physician"]["id"],
                    total=Decimal(context["total"]),
                    pdf=content,
                    pdf_sha256=hashlib.sha256(content).hexdigest(),
                )
                created += 1
        except IntegrityError:
            continue
    return created


@dataclass(frozen=True)
class Verification:
    ok: bool
    uploaded_sha256: str
    expected_sha256: str
    calculation_hash: str
    calculation_intact: bool
    message: str


def report_verify(*, report: AdjudicationReport, content: bytes) -> Verification:
    """Does this PDF match the stored report? Also re-checks the stored figures' hash."""
    from .calculation import calculation_hash

    uploaded = hashlib.sha256(content).hexdigest()
    run = report.run
    results = {
        "figures": run.figures,
        "flags": run.flags,
        "totals": run.results,
        "distributions": [
            jsonable(
                {
                    "physician_id": d.physician_id,
                    "component": d.component,
                    "entitlement": d.entitlement,
                    "weight": d.weight,
                    "amount": d.amount,
                    "note": d.note,
                }
            )
            for d in run.distributions.all()
        ],
    }
    recomputed = calculation_hash(
        inputs=run.inputs, rules_version=run.rules_version, results=results
    )
    intact = recomputed == report.calculation_hash == run.calculation_hash
    if not report.pdf_sha256:
        return Verification(
            False,
            uploaded,
            "",
            report.calculation_hash,
            intact,
            "This report has no rendered PDF yet, so nothing can be verified.",
        )
    if uploaded == report.pdf_sha256:
        state = "the approved, frozen" if report.is_frozen else "the current (not yet approved)"
        message = (
            f"Verified: this PDF is byte for byte {state} adjudication report "
            f"version {report.version}."
        )
        if not intact:
            message += " Warning: the stored figures no longer match their calculation hash."
        return Verification(
            True, uploaded, report.pdf_sha256, report.calculation_hash, intact, message
        )
    return Verification(
        False,
        uploaded,
        report.pdf_sha256,
        report.calculation_hash,
        intact,
        "Not verified: this PDF does not match the stored report. It has been "
        "altered, or it is a different version.",
    )


# --------------------------------------------------------------------------------------------
# Payments


def _paid_before(report: AdjudicationReport) -> dict[str, Decimal]:
    """What earlier (superseded) versions of this year already paid, per line."""
    paid: dict[str, Decimal] = {}
    old = report.supersedes
    while old is not None:
        for line in old.payment_lines.filter(paid_on__isnull=False):
            paid[line.line_key] = paid.get(line.line_key, ZERO) + (line.paid_amount or ZERO)
        old = old.supersedes
    return paid


def payment_lines_create(*, report: AdjudicationReport) -> list[PaymentLine]:
    """Store the lines of ``payment_lines_plan`` (when the CEO authorises)."""
    created = PaymentLine.objects.bulk_create(payment_lines_plan(report=report))
    data_version_bump(report.organization_id)  # bulk_create sends no post_save
    return created


@dataclass(frozen=True)
class _Due:
    """What a report owes on one payment line, before what earlier versions paid."""

    key: str
    kind: str
    payee: str
    physician_id: int | None
    description: str
    amount: Decimal

    def line(
        self, *, report: AdjudicationReport, position: int, paid_earlier: Decimal | None
    ) -> PaymentLine | None:
        """The unsaved line paying the rest (``None`` when nothing is left to pay)."""
        amount = self.amount - (paid_earlier or ZERO)
        if amount <= 0:
            return None
        description = self.description
        if paid_earlier is not None:
            description += f" (correction; {paid_earlier:,.2f} paid earlier)"
        return PaymentLine(
            organization=report.organization,
            report=report,
            line_key=self.key,
            kind=self.kind,
            position=position,
            payee=self.payee,
            physician_id=self.physician_id,
            description=description[:300],
            amount=amount,
        )


def _co_management_dues(report: AdjudicationReport, practice: str) -> list[_Due]:
    """Each month's fixed-fee instalment as the run calculated it, then the incentive earned."""
    read = report.run.read
    dues = [
        _Due(
            key=f"fixed_fee:{line.month.isoformat()}",
            kind=PaymentKind.FIXED_FEE,
            payee=practice,
            physician_id=None,
            description=f"Fixed management fee, {line.month:%B %Y}",
            amount=line.amount_payable,
        )
        for line in read.fixed_fee_lines
    ]
    dues.append(
        _Due(
            key="incentive",
            kind=PaymentKind.INCENTIVE,
            payee=practice,
            physician_id=None,
            description=f"Incentive bonus, {report.programme_year.label}",
            amount=read.totals.incentive_earned or ZERO,
        )
    )
    return dues


def _savings_dues(report: AdjudicationReport, practice: str) -> list[_Due]:
    """Each physician's shared-savings distribution, in the run's order."""
    return [
        _Due(
            key=f"distribution:{d.physician_id}",
            kind=PaymentKind.DISTRIBUTION,
            payee=f"{practice} for {d.physician}",
            physician_id=d.physician_id,
            description=f"Shared-savings distribution, {d.physician}",
            amount=d.amount,
        )
        for d in report.run.distributions.select_related("physician").order_by("position")
    ]


def payment_lines_plan(*, report: AdjudicationReport) -> list[PaymentLine]:
    """The lines accounts payable pays once the CEO authorises (unsaved): fixed-fee instalments
    and the incentive to the practice (co-management), or each physician's distribution
    (shared savings). A correction pays only the difference to what an earlier version paid."""
    practice = report.agreement.practice.name
    dues = (
        _co_management_dues(report, practice)
        if report.run.kind == CO_MANAGEMENT
        else _savings_dues(report, practice)
    )
    paid_before = _paid_before(report)
    planned = (
        due.line(report=report, position=position, paid_earlier=paid_before.get(due.key))
        for position, due in enumerate(dues)
    )
    return [line for line in planned if line is not None]


def payment_record(
    *, line: PaymentLine, paid_amount: Any, paid_on: dt.date, reference: str, user: User | None
) -> PaymentLine:
    """Record that a line was paid. A line is recorded once; the last one marks the report paid."""
    membership = _membership(user, line.organization)
    if not membership_can(membership, "payment.record"):
        raise TransitionForbidden("Your role cannot record payments.")
    amount = parse_money(paid_amount, field="paid_amount")
    refuse_nul(reference, field="reference")
    if amount != line.amount:
        raise PaymentRefused(
            f"The amount paid ({amount:,.2f}) must equal the authorised "
            f"amount ({line.amount:,.2f}).",
            field="paid_amount",
        )
    if paid_on > timezone.localdate():
        raise PaymentRefused("The payment date cannot be in the future.", field="paid_on")
    with transaction.atomic():
        report = AdjudicationReport.objects.select_for_update().get(pk=line.report_id)
        if report.status != ReportStatus.AUTHORISED:
            raise PaymentRefused(
                f"Payments are recorded only on an authorised report; this one "
                f"is {report.get_status_display().lower()}."
            )
        now = timezone.now()
        updated = PaymentLine.objects.filter(pk=line.pk, paid_on__isnull=True).update(
            paid_amount=amount,
            paid_on=paid_on,
            reference=reference[:100],
            recorded_by=user,
            recorded_at=now,
        )
        if not updated:
            raise PaymentRefused("This line was already recorded as paid; nothing is paid twice.")
        data_version_bump(line.organization_id)  # update() sends no post_save
        line.refresh_from_db()
        event_record(
            organization=line.organization,
            name="payment.recorded",
            actor=user,
            obj=line,
            summary=f"{line.description}: {format_money(amount)} paid on {format_date(paid_on)}",
            data={
                "report": report.pk,
                "line_key": line.line_key,
                "amount": str(amount),
                "paid_on": paid_on.isoformat(),
                "reference": reference,
            },
        )
        all_paid = not report.payment_lines.filter(paid_on__isnull=True).exists()
        if all_paid and AdjudicationReport.objects.filter(
            pk=report.pk, status=ReportStatus.AUTHORISED
        ).update(status=ReportStatus.PAID):
            _transition_log(
                report=report,
                from_status=ReportStatus.AUTHORISED,
                to_status=ReportStatus.PAID,
                user=user,
                at=now,
                comment="All payment lines recorded.",
                membership=membership,
            )
    return line


# --------------------------------------------------------------------------------------------
# What-if


@dataclass(frozen=True)
class ScenarioComparison:
    official: CalculationRun | None
    rows: list[dict[str, Any]]
    diff: list[dict[str, Any]]
    payload: Payload


def scenario_overrides_parse(*, programme_year: ProgrammeYear, overrides: Any) -> dict[str, Any]:
    """The what-if overrides read strictly for the agreement's kind: an unknown key, indicator
    or item, a non-finite, unbounded or negative amount, a non-boolean or a NUL character is an
    ``InputError`` (400) naming the field, before anything is computed."""
    if programme_year.agreement.kind == AgreementKind.CO_MANAGEMENT:
        keys = [d.key for d in definitions_in_force(programme_year=programme_year)]
        return incentive_overrides_parse(indicator_keys=keys, overrides=overrides)
    return savings_overrides_parse(
        overrides=overrides, item_codes=agreed_item_codes(agreement=programme_year.agreement)
    )


def _stored(value: Decimal | None) -> str | None:
    """A figure as the run stores it (the comparison rows show stored strings)."""
    return None if value is None else str(value)


def _comparison_row(
    key: str, label: str, official: Decimal | None, scenario: Decimal | None
) -> dict[str, Any]:
    difference = None if official is None or scenario is None else scenario - official
    return {
        "key": key,
        "label": label,
        "official": _stored(official),
        "scenario": _stored(scenario),
        "difference": _stored(difference),
    }


def _scenario_total_rows(official: RunRead | None, scenario: RunRead) -> list[dict[str, Any]]:
    """Every total either calculation records, by name."""
    before = official.totals if official is not None else RunTotals()
    after = scenario.totals
    names = sorted(
        f.name
        for f in fields(RunTotals)
        if f.name != "kind"
        and (getattr(before, f.name) is not None or getattr(after, f.name) is not None)
    )
    return [
        _comparison_row(
            name,
            name.replace("_", " ").capitalize(),
            getattr(before, name),
            getattr(after, name),
        )
        for name in names
    ]


def _scenario_indicator_rows(official: RunRead | None, scenario: RunRead) -> list[dict[str, Any]]:
    """What each indicator earns (co-management), beside what it earned in the official run."""
    if scenario.incentive is None:
        return []
    before = official.incentive if official is not None else None
    rows = []
    for outcome in scenario.incentive.indicators:
        old = before.outcome(outcome.key) if before is not None else None
        rows.append(
            _comparison_row(
                f"indicator:{outcome.key}",
                f"Earned: {outcome.name}",
                old.earned if old is not None else None,
                outcome.earned,
            )
        )
    return rows


def scenario_compare(
    *, programme_year: ProgrammeYear, overrides: dict[str, Any]
) -> ScenarioComparison:
    """Figures with the overrides beside the latest official run; writes nothing at all."""
    overrides = scenario_overrides_parse(programme_year=programme_year, overrides=overrides)
    payload = calculation_gather(programme_year=programme_year, overrides=overrides)
    official = (
        CalculationRun.objects.filter(programme_year=programme_year).order_by("-version").first()
    )
    before, after = (official.read if official else None), RunRead.from_run(payload)
    rows = _scenario_total_rows(before, after) + _scenario_indicator_rows(before, after)
    diff = figures_diff(_diff_basis(official), _diff_basis(payload)) if official else []
    return ScenarioComparison(official=official, rows=rows, diff=diff, payload=payload)
