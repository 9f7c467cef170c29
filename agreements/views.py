"""Agreement pages. Thin: load, check the declared permission, call a service, render."""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from comanage.core.display import field_label, field_value
from comanage.core.exports import csv_response
from comanage.core.forms import apply_errors
from comanage.core.http import OrgRequest, signed_in_user
from comanage.core.money import format_money
from comanage.core.permissions import membership_can
from comanage.core.views import object_for_member, object_history, org_view

from . import forms as f
from . import selectors, services, setup
from .models import (
    Agreement,
    AgreementDocument,
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    CommitteeMeeting,
    ComplianceFlag,
    FMVOpinion,
    ManagementDuty,
    Milestone,
    Participation,
    Physician,
    Practice,
    ProgrammeYear,
    TimeSheet,
    TimeSheetStatus,
)

PAGE_SIZE = 25


def _own_physician(request: HttpRequest) -> Physician | None:
    membership = request.membership  # type: ignore[attr-defined]
    return membership.physician if membership.role == "physician" else None


def _paginate(request: HttpRequest, queryset: Any) -> Any:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _form_page(
    request: HttpRequest,
    form: Any,
    *,
    title: str,
    save: Callable[[dict], Any],
    success: Callable[[Any], str],
    back: str,
    intro: str = "",
    extra: dict[str, Any] | None = None,
    template: str = "agreements/form.html",
) -> HttpResponse:
    """Validate the form, hand its data to a service, show refusals inline."""
    if request.method == "POST" and form.is_valid():
        try:
            result = save(form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect(success(result))
    context = {"form": form, "title": title, "back": back, "intro": intro, **(extra or {})}
    return render(request, template, context, status=400 if form.errors else 200)


def _url(name: str, request: HttpRequest, *args: Any) -> str:
    return reverse(name, args=[request.organization.slug, *args])  # type: ignore[attr-defined]


# --- agreements ------------------------------------------------------------------------------


@org_view("agreement.view")
def agreement_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    agreements = selectors.agreement_search(
        query=q, status=status, kind=kind, physician=_own_physician(request)
    )
    if request.GET.get("export") == "csv":
        return csv_response(
            "agreements.csv",
            [
                "id",
                "name",
                "kind",
                "service line",
                "practice",
                "status",
                "term start",
                "term end",
                "executed on",
            ],
            [
                [
                    a.pk,
                    a.name,
                    a.get_kind_display(),
                    a.service_line_label,
                    a.practice.name,
                    a.get_status_display(),
                    a.term_start,
                    a.term_end,
                    a.executed_on or "",
                ]
                for a in agreements
            ],
        )
    return render(
        request,
        "agreements/agreement_list.html",
        {
            "page": _paginate(request, agreements),
            "q": q,
            "status": status,
            "kind": kind,
            "statuses": AgreementStatus.choices,
            "kinds": AgreementKind.choices,
        },
    )


@org_view("agreement.edit")
def agreement_create(request: OrgRequest, org_slug: str) -> HttpResponse:
    form = f.AgreementCreateForm(
        request.POST or None, initial={"organization_id": request.organization.pk}
    )
    return _form_page(
        request,
        form,
        title="New agreement",
        back=_url("agreement_list", request),
        intro="Step 1 of the setup: the parties and the term. Programme years are generated "
        "from the term.",
        save=lambda data: services.agreement_create(
            organization=request.organization, data=data, user=signed_in_user(request)
        ),
        success=lambda a: _url("agreement_setup", request, a.pk, "fmv"),
    )


@org_view("agreement.view")
def agreement_detail(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    organization_id = request.organization.pk
    # The version is read before any data: what is cached under it is never older than it.
    version = selectors.agreement_page_version(organization_id=organization_id)
    agreement = object_for_member(
        request,
        Agreement.objects.select_related("practice", "administrator_contact"),
        pk,
        "agreement.view",
    )
    membership = request.membership
    physician = _own_physician(request)

    # Most of the page is a cached fragment (the template's {% cache %} blocks): the sections
    # are read only if it must be rendered (a callable in a template context is called when the
    # template first uses it).
    cached = functools.cache(
        lambda: selectors.agreement_detail_sections(
            organization_id=organization_id, agreement=agreement, version=version
        )
    )

    def section(name: str, permission: str | None = None) -> Callable[[], Any] | None:
        if permission is not None and not membership_can(membership, permission):
            return None
        return lambda: cached()[name]

    context = {
        **{
            name: section(name)
            for name in (
                "year_rows",
                "terms_versions",
                "duties",
                "milestones",
                "meetings",
                "activation_blockers",
            )
        },
        "agreement": agreement,
        "data_version": version,
        # A physician sees only their own participation: their id is in the key.
        "participations": lambda: selectors.agreement_participations(
            organization_id=organization_id,
            agreement=agreement,
            physician=physician,
            version=version,
        ),
        "fmv_opinions": section("fmv_opinions", "fmv.view"),
        "documents": section("documents", "document.view"),
        "flags": section("flags", "flag.view"),
        "transitions": sorted(services.TRANSITIONS.get(agreement.status, set())),
        "transition_form": f.TransitionForm(),
        "today": timezone.localdate(),
    }
    return render(request, "agreements/agreement_detail.html", context)


ADD_LABELS = {
    "fmv": "Add an FMV opinion",
    "duties": "Add a duty",
    "physicians": "Add a physician",
    "documents": "Upload a document",
}


def _setup_session_key(pk: int) -> str:
    return f"agreement-setup:{pk}"


@org_view("agreement.edit")
def agreement_setup_overview(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    """The setup's checklist: every step, what it still needs, and where to continue."""
    agreement = object_for_member(
        request, Agreement.objects.select_related("practice"), pk, "agreement.edit"
    )
    checklist = setup.setup_checklist(agreement=agreement)
    resume = setup.setup_resume_step(
        agreement=agreement, last=request.session.get(_setup_session_key(pk))
    )
    return render(
        request,
        "agreements/setup_overview.html",
        {
            "agreement": agreement,
            "checklist": checklist,
            "resume": resume,
            "resume_label": dict(setup.setup_steps(agreement=agreement))[resume],
            "required_missing": [s for s in checklist if s.required and not s.done],
        },
    )


_SetupSave = Callable[[dict], Any]
_SetupStep = Callable[..., "tuple[Any, _SetupSave | None]"]


def _setup_agreement_form(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    """The parties and term steps: the agreement's own fields."""
    user = signed_in_user(request)
    form_class = f.AgreementPartiesForm if step == "parties" else f.AgreementTermForm
    form = form_class(
        data, instance=copy.copy(agreement), initial={"organization_id": request.organization.pk}
    )
    return form, lambda d: services.agreement_update(agreement=agreement, data=d, user=user)


def _setup_policies(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    user = signed_in_user(request)
    terms = selectors.terms_latest(agreement=agreement)
    if terms is None:
        raise Http404
    form = f.TermsPolicyForm(
        data, instance=copy.copy(terms), kind=agreement.kind, frozen=agreement.is_frozen
    )
    return form, lambda d: services.terms_update(terms=terms, data=d, user=user)


def _setup_fmv(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    context["items"] = [
        f"{o.valuator}: {o.effective_start:%b %-d, %Y} – {o.effective_end:%b %-d, %Y}, "
        f"at most {format_money(o.total_max_annual)} a year"
        for o in agreement.fmv_opinions.all()
    ]

    def save(d: dict) -> Any:
        saved, warnings = services.fmv_opinion_save(agreement=agreement, data=d)
        for warning in warnings:
            messages.warning(request, warning)
        return saved

    return f.FMVOpinionForm(data), save


def _setup_duties(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    context["items"] = [
        f"{d.name}: {d.required_monthly_hours} h a month required, at most {d.max_monthly_hours} h"
        for d in agreement.duties.all()
    ]
    if agreement.is_frozen:
        return None, None
    return f.DutyForm(data), lambda d: services.duty_save(agreement=agreement, data=d)


def _setup_physicians(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    user = signed_in_user(request)
    context["items"] = [
        f"{p.physician.full_name} (NPI {p.physician.npi}), joins {p.join_date:%b %-d, %Y}"
        for p in agreement.participations.select_related("physician")
    ]
    form = f.SetupParticipantForm(data, agreement=agreement)
    return form, lambda d: services.participant_add(agreement=agreement, data=d, user=user)


def _setup_committee(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    context["items"] = [
        f"{m.name} ({m.owner}): due {m.due_date:%b %-d, %Y}" for m in agreement.milestones.all()
    ]
    if context["items"]:
        return None, None
    return f.PlanForm(data), lambda d: services.milestones_generate(
        agreement=agreement, start=d["start"]
    )


def _setup_documents(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    user = signed_in_user(request)
    context["items"] = [f"{d.get_kind_display()}: {d.title}" for d in agreement.documents.all()]
    context["multipart"] = True
    form = f.DocumentForm(data, request.FILES or None)
    return form, lambda d: services.document_upload(
        agreement=agreement, kind=d["kind"], title=d["title"], upload=d["file"], user=user
    )


def _setup_contributed(
    step: str, request: OrgRequest, agreement: Agreement, context: dict[str, Any], data: Any
) -> tuple[Any, _SetupSave | None]:
    """A step another app adds to the setup (setup.CONTRIBUTED)."""
    user = signed_in_user(request)
    extra = setup.CONTRIBUTED[step]
    context["intro"] = extra.intro
    context["submit"] = extra.submit
    context["items"] = extra.items(agreement)
    return extra.form(agreement, data), lambda d: extra.save(agreement, d, user)


# One handler per kind of step: it fills the step's context and gives its form and save.
_SETUP_STEPS: dict[str, _SetupStep] = {
    "parties": _setup_agreement_form,
    "term": _setup_agreement_form,
    "policies": _setup_policies,
    "fmv": _setup_fmv,
    "duties": _setup_duties,
    "physicians": _setup_physicians,
    "committee": _setup_committee,
    "documents": _setup_documents,
}


def _setup_context(
    request: OrgRequest, agreement: Agreement, steps: list[tuple[str, str]], step: str
) -> dict[str, Any]:
    """What every step's page shows: where it is in the setup and what it still needs."""
    names = [s for s, _ in steps]
    index = names.index(step)
    next_step = names[index + 1] if index + 1 < len(names) else None
    overview_url = _url("agreement_setup_overview", request, agreement.pk)
    next_url = (
        _url("agreement_setup", request, agreement.pk, next_step) if next_step else overview_url
    )
    return {
        "agreement": agreement,
        "steps": steps,
        "step": step,
        "step_label": dict(steps)[step],
        "step_index": index,
        "step_number": index + 1,
        "step_count": len(steps),
        "next_url": next_url,
        "overview_url": overview_url,
        "missing": setup.setup_missing(agreement=agreement, key=step),
        "done_keys": {s.key for s in setup.setup_checklist(agreement=agreement) if s.done},
        "frozen": agreement.is_frozen,
        "items": None,
    }


@org_view("agreement.edit")
def agreement_setup(request: OrgRequest, org_slug: str, pk: int, step: str) -> HttpResponse:
    """One step of the guided setup, from nothing to an active agreement. Each step is a form;
    "Cancel" saves nothing and goes back to the checklist; the step is remembered so that
    the checklist's "Continue" comes back to it."""
    agreement = object_for_member(
        request, Agreement.objects.select_related("practice"), pk, "agreement.edit"
    )
    steps = setup.setup_steps(agreement=agreement)
    if step not in dict(steps):
        raise Http404
    request.session[_setup_session_key(pk)] = step
    context = _setup_context(request, agreement, steps, step)
    here = _url("agreement_setup", request, pk, step)
    data = request.POST if request.method == "POST" else None
    handler = _SETUP_STEPS.get(step)
    if handler is None and step in setup.CONTRIBUTED:
        handler = _setup_contributed
    if handler is None and step == "execute":
        return _setup_execute(request, agreement, context)
    form, save = handler(step, request, agreement, context, data) if handler else (None, None)
    multi_row = step in setup.MULTI_ROW or step in setup.CONTRIBUTED
    success = here if multi_row else context["next_url"]  # add another, or continue
    context["form"] = form
    context.setdefault(
        "submit",
        ADD_LABELS.get(step, "Add") if success == here else "Save and continue",
    )
    if form is None or save is None:
        return render(request, "agreements/setup.html", context)
    return _form_page(
        request,
        form,
        title=f"Set up {agreement}",
        save=save,
        success=lambda _: success,
        back=context["overview_url"],
        extra=context,
        template="agreements/setup.html",
    )


def _setup_execute(request: OrgRequest, agreement: Agreement, context: dict[str, Any]) -> Any:
    """The last step: record the signing, then activate through the lifecycle service. A
    refusal lists the service's reasons, in its words."""
    here = _url("agreement_setup", request, agreement.pk, "execute")
    signing = agreement.status in (AgreementStatus.DRAFT, AgreementStatus.IN_NEGOTIATION)
    form = f.SetupSigningForm(request.POST if request.method == "POST" and signing else None)
    refusals: list[str] = []
    status = 200
    if request.method == "POST" and not signing and agreement.status != AgreementStatus.EXECUTED:
        return redirect(here)  # nothing left to do here (active, or ended)
    if request.method == "POST" and signing and not form.is_valid():
        status = 400
    elif request.method == "POST":
        try:
            if signing:
                services.agreement_execute(
                    agreement=agreement,
                    executed_on=form.cleaned_data["executed_on"],
                    signatories=form.cleaned_data["signatories"],
                    user=signed_in_user(request),
                )
                messages.success(request, "The signing is recorded. Activate the agreement.")
            else:
                services.agreement_transition(
                    agreement=agreement,
                    to_status=AgreementStatus.ACTIVE,
                    user=signed_in_user(request),
                )
                messages.success(request, "The agreement is active.")
        except ValidationError as exc:
            agreement.refresh_from_db()
            status = 400
            if signing:
                apply_errors(form, exc)
            else:
                refusals = [m for errors in exc.message_dict.values() for m in errors]
        else:
            return redirect(here)
    context.update(
        {
            "signing": signing,
            "form": form if signing else None,
            "refusals": refusals,
            "blockers": services.activation_blockers(agreement=agreement)
            if agreement.status == AgreementStatus.EXECUTED
            else [],
            "incomplete": [
                s
                for s in setup.setup_checklist(agreement=agreement)
                if s.required and not s.done and s.key != "execute"
            ],
            "submit": "Record the signing",
        }
    )
    return render(request, "agreements/setup.html", context, status=status)


@org_view("agreement.edit")
@require_POST
def agreement_transition(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    agreement = object_for_member(request, Agreement, pk, "agreement.edit")
    form = f.TransitionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.agreement_transition(
                agreement=agreement,
                to_status=data["to_status"],
                user=signed_in_user(request),
                executed_on=data.get("executed_on"),
                signatories=data.get("signatories") or "",
                reason=data.get("reason") or "",
            )
        except ValidationError as exc:
            for field_name, errors in exc.message_dict.items():
                label = (
                    ""
                    if field_name in ("__all__", "status")
                    else (f"{field_name.replace('_', ' ').capitalize()}: ")
                )
                for message in errors:
                    messages.error(request, f"{label}{message}")
        else:
            messages.success(request, f"The agreement is now {agreement.get_status_display()}.")
    return redirect(request.POST.get("next") or _url("agreement_detail", request, pk))


@org_view("agreement.edit")
def amendment_create(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    agreement = object_for_member(request, Agreement, pk, "agreement.edit")
    latest = selectors.terms_latest(agreement=agreement)
    form = f.AmendmentForm(
        request.POST or None, kind=agreement.kind, instance=copy.copy(latest) if latest else None
    )
    if request.method == "GET":
        form.initial["effective_from"] = None
        form.initial["reason"] = ""
    return _form_page(
        request,
        form,
        title=f"Amend the terms of {agreement}",
        back=_url("agreement_detail", request, pk),
        intro="An amendment is a new version of the terms, copied from the latest one, "
        "effective from a future date. Programme years that start before it keep "
        "their terms.",
        save=lambda d: services.amendment_create(
            agreement=agreement,
            effective_from=d.pop("effective_from"),
            reason=d.pop("reason"),
            data=d,
            user=signed_in_user(request),
        ),
        success=lambda _: _url("agreement_detail", request, pk),
    )


@org_view("agreement.view")
def terms_detail(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    terms = get_object_or_404(AgreementTerms.objects.select_related("agreement"), pk=pk)
    object_for_member(request, Agreement, terms.agreement_id, "agreement.view")
    fields = [
        (field_label(field), field_value(field, getattr(terms, name)))
        for name in services.TERMS_FIELDS
        for field in [terms._meta.get_field(name)]
    ]
    return render(request, "agreements/terms_detail.html", {"terms": terms, "fields": fields})


@org_view("agreement.view")
def fee_schedule(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    year = get_object_or_404(ProgrammeYear.objects.select_related("agreement"), pk=pk)
    object_for_member(request, Agreement, year.agreement_id, "agreement.view")
    if not membership_can(request.membership, "timelog.view"):
        raise PermissionDenied
    try:
        lines = selectors.fixed_fee_schedule(programme_year=year)
    except AgreementTerms.DoesNotExist as exc:
        lines, error = [], str(exc)
    else:
        error = ""
    return render(
        request,
        "agreements/fee_schedule.html",
        {
            "year": year,
            "agreement": year.agreement,
            "lines": lines,
            "error": error,
            "total": sum((ln.amount_payable for ln in lines), start=0),
            "blockers": selectors.approval_blockers(programme_year=year)
            if membership_can(request.membership, "flag.view")
            else None,
            "attendance": selectors.committee_attendance(programme_year=year),
        },
    )


# --- practices and physicians ----------------------------------------------------------------


@org_view("physician.view")
def practice_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    practices = Practice.objects.all()
    if _own_physician(request) is not None:
        # ``physician.view`` is own-rows-only for a physician and no practice is a physician's
        # own record: the list is empty, as the API's (``TenantViewSet.filter_own``).
        practices = practices.none()
    if q:
        practices = practices.filter(Q(name__icontains=q) | Q(contact_name__icontains=q))
    if request.GET.get("export") == "csv":
        return csv_response(
            "practices.csv",
            ["id", "name", "tax id", "contact", "email"],
            [[p.pk, p.name, p.tax_id, p.contact_name, p.contact_email] for p in practices],
        )
    return render(
        request, "agreements/practice_list.html", {"page": _paginate(request, practices), "q": q}
    )


@org_view("physician.edit")
def practice_form(request: OrgRequest, org_slug: str, pk: int | None = None) -> HttpResponse:
    practice = object_for_member(request, Practice, pk, "physician.edit") if pk else None
    form = f.PracticeForm(request.POST or None, instance=copy.copy(practice))
    return _form_page(
        request,
        form,
        title=f"Edit {practice}" if practice else "New practice",
        back=_url("practice_list", request),
        extra={"history_obj": practice, "history_kind": "practice"},
        save=lambda d: services.practice_save(
            organization=request.organization, data=d, practice=practice
        ),
        success=lambda _: _url("practice_list", request),
    )


@org_view("physician.view")
def physician_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    physicians = Physician.objects.select_related("practice")
    own = _own_physician(request)
    if own is not None:
        physicians = physicians.filter(pk=own.pk)
    if q:
        physicians = physicians.filter(
            Q(last_name__icontains=q)
            | Q(first_name__icontains=q)
            | Q(npi__startswith=q)
            | Q(specialty__icontains=q)
        )
    if request.GET.get("export") == "csv":
        return csv_response(
            "physicians.csv",
            ["id", "npi", "last name", "first name", "specialty", "practice", "email"],
            [
                [
                    p.pk,
                    p.npi,
                    p.last_name,
                    p.first_name,
                    p.specialty,
                    p.practice.name if p.practice else "",
                    p.email,
                ]
                for p in physicians
            ],
        )
    return render(
        request, "agreements/physician_list.html", {"page": _paginate(request, physicians), "q": q}
    )


@org_view("physician.view")
def physician_detail(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    physician = object_for_member(
        request, Physician.objects.select_related("practice"), pk, "physician.view"
    )
    return render(
        request,
        "agreements/physician_detail.html",
        {
            "physician": physician,
            "participations": physician.participations.select_related("agreement"),
            "timesheets": physician.timesheets.select_related("agreement")[:24],
        },
    )


@org_view("physician.edit")
def physician_form(request: OrgRequest, org_slug: str, pk: int | None = None) -> HttpResponse:
    physician = object_for_member(request, Physician, pk, "physician.edit") if pk else None
    form = f.PhysicianForm(request.POST or None, instance=copy.copy(physician))
    return _form_page(
        request,
        form,
        title=f"Edit {physician}" if physician else "New physician",
        back=_url("physician_list", request),
        save=lambda d: services.physician_save(
            organization=request.organization, data=d, physician=physician
        ),
        success=lambda p: _url("physician_detail", request, p.pk),
    )


# --- participation, FMV, duties --------------------------------------------------------------


@org_view("agreement.edit")
def participation_form(
    request: HttpRequest, org_slug: str, pk: int | None = None, agreement_pk: int | None = None
) -> HttpResponse:
    participation = object_for_member(request, Participation, pk, "agreement.edit") if pk else None
    agreement = (
        participation.agreement
        if participation
        else object_for_member(request, Agreement, agreement_pk, "agreement.edit")
    )
    form = f.ParticipationForm(request.POST or None, instance=copy.copy(participation))
    return _form_page(
        request,
        form,
        title=f"Participation in {agreement}",
        back=_url("agreement_detail", request, agreement.pk),
        intro="A physician may take part in several agreements. Record a voluntary leave or a "
        "termination (with its reason, and whether it was for cause) here.",
        save=lambda d: services.participation_save(
            agreement=agreement, data=d, participation=participation
        ),
        success=lambda _: _url("agreement_detail", request, agreement.pk),
    )


@org_view("fmv.edit")
def fmv_form(
    request: HttpRequest, org_slug: str, pk: int | None = None, agreement_pk: int | None = None
) -> HttpResponse:
    opinion = object_for_member(request, FMVOpinion, pk, "fmv.edit") if pk else None
    agreement = (
        opinion.agreement
        if opinion
        else object_for_member(request, Agreement, agreement_pk, "agreement.view")
    )
    form = f.FMVOpinionForm(request.POST or None, instance=copy.copy(opinion))

    def save(data: dict) -> FMVOpinion:
        saved, warnings = services.fmv_opinion_save(agreement=agreement, data=data, opinion=opinion)
        for warning in warnings:
            messages.warning(request, warning)
        return saved

    back = request.GET.get("next") or _url("agreement_detail", request, agreement.pk)
    if not back.startswith("/"):
        back = _url("agreement_detail", request, agreement.pk)
    return _form_page(
        request,
        form,
        title=f"FMV opinion for {agreement}",
        back=back,
        save=save,
        intro="Fixed + maximum incentive may not exceed the total maximum; an hourly rate "
        "above the 75th percentile needs a written justification.",
        success=lambda _: back,
    )


@org_view("agreement.edit")
def duty_form(
    request: HttpRequest, org_slug: str, pk: int | None = None, agreement_pk: int | None = None
) -> HttpResponse:
    duty = object_for_member(request, ManagementDuty, pk, "agreement.edit") if pk else None
    agreement = (
        duty.agreement
        if duty
        else object_for_member(request, Agreement, agreement_pk, "agreement.edit")
    )
    form = f.DutyForm(request.POST or None, instance=copy.copy(duty))
    back = _url("agreement_setup", request, agreement.pk, "duties")
    return _form_page(
        request,
        form,
        title=f"Management duty of {agreement}",
        back=back,
        save=lambda d: services.duty_save(agreement=agreement, data=d, duty=duty),
        success=lambda _: back,
    )


# --- time sheets -----------------------------------------------------------------------------


@org_view("timelog.view")
def timesheet_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    status = request.GET.get("status", "")
    q = request.GET.get("q", "").strip()
    sheets = TimeSheet.objects.select_related("agreement", "physician").prefetch_related("entries")
    own = _own_physician(request)
    if own is not None:
        sheets = sheets.filter(physician=own)
    if status:
        sheets = sheets.filter(status=status)
    if q:
        sheets = sheets.filter(
            Q(physician__last_name__icontains=q) | Q(agreement__name__icontains=q)
        )
    if request.GET.get("export") == "csv":
        return csv_response(
            "timesheets.csv",
            ["id", "agreement", "physician", "npi", "month", "status", "hours"],
            [
                [
                    s.pk,
                    s.agreement.name,
                    s.physician.full_name,
                    s.physician.npi,
                    f"{s.month:%Y-%m}",
                    s.get_status_display(),
                    sum((e.hours for e in s.entries.all()), start=0),
                ]
                for s in sheets
            ],
        )
    return render(
        request,
        "agreements/timesheet_list.html",
        {
            "page": _paginate(request, sheets),
            "status": status,
            "q": q,
            "statuses": TimeSheetStatus.choices,
        },
    )


TIMESHEET_ACTIONS = {
    "submit": "timelog.edit",
    "approve": "timelog.approve",
    "return": "timelog.approve",
}


# POST needs at least ``timelog.edit`` (a physician submits their own sheet); approving and
# returning need ``timelog.approve`` on top, checked per action below.
@org_view("timelog.view", post="timelog.edit")
def timesheet_detail(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    sheet = object_for_member(
        request, TimeSheet.objects.select_related("agreement", "physician"), pk, "timelog.view"
    )
    form = f.ReviewForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in TIMESHEET_ACTIONS:
            messages.error(request, "Unknown action.")
            return redirect(_url("timesheet_detail", request, pk))
        object_for_member(request, TimeSheet, pk, TIMESHEET_ACTIONS[action])
        try:
            if action == "submit":
                services.timesheet_submit(
                    timesheet=sheet,
                    user=signed_in_user(request),
                    acting_physician=_own_physician(request),
                )
            elif action == "approve":
                services.timesheet_approve(
                    timesheet=sheet, user=signed_in_user(request), note=request.POST.get("note", "")
                )
            else:
                services.timesheet_return(
                    timesheet=sheet, user=signed_in_user(request), note=request.POST.get("note", "")
                )
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                for message in errors:
                    messages.error(request, message)
        else:
            messages.success(
                request,
                f"Time sheet {action}ed." if action != "submit" else "Time sheet submitted.",
            )
        return redirect(_url("timesheet_detail", request, pk))
    return render(
        request,
        "agreements/timesheet_detail.html",
        {
            "sheet": sheet,
            "entries": sheet.entries.select_related("duty"),
            "form": form,
            "total": sum((e.hours for e in sheet.entries.all()), start=0),
        },
    )


# --- committee -------------------------------------------------------------------------------


@org_view("committee.view")
def committee_list(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = object_for_member(request, Agreement, agreement_pk, "committee.view")
    years = list(agreement.programme_years.all())
    own = _own_physician(request)
    attendance = []
    for year in years:
        rows = selectors.committee_attendance(programme_year=year)
        if own is not None:
            rows = [r for r in rows if r.physician.pk == own.pk]
        attendance.append((year, rows))
    return render(
        request,
        "agreements/committee_list.html",
        {
            "agreement": agreement,
            "attendance": attendance,
            "meetings": agreement.committee_meetings.prefetch_related("physicians_present"),
        },
    )


@org_view("committee.edit")
def committee_form(
    request: HttpRequest, org_slug: str, pk: int | None = None, agreement_pk: int | None = None
) -> HttpResponse:
    meeting = object_for_member(request, CommitteeMeeting, pk, "committee.edit") if pk else None
    agreement = (
        meeting.agreement
        if meeting
        else object_for_member(request, Agreement, agreement_pk, "committee.view")
    )
    form = f.CommitteeMeetingForm(
        request.POST or None, instance=copy.copy(meeting), agreement=agreement
    )
    back = _url("committee_list", request, agreement.pk)
    return _form_page(
        request,
        form,
        title=f"Committee meeting · {agreement}",
        back=back,
        save=lambda d: services.committee_meeting_save(
            agreement=agreement, data=d, meeting=meeting
        ),
        success=lambda _: back,
    )


# --- compliance ------------------------------------------------------------------------------


@org_view("flag.view")
def flag_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    state = request.GET.get("state", "open")
    q = request.GET.get("q", "").strip()
    flags = ComplianceFlag.objects.select_related("agreement", "physician", "resolved_by")
    if state == "open":
        flags = flags.filter(resolved_at__isnull=True)
    elif state == "resolved":
        flags = flags.filter(resolved_at__isnull=False)
    if q:
        flags = flags.filter(Q(message__icontains=q) | Q(kind__icontains=q))
    if request.GET.get("export") == "csv":
        return csv_response(
            "compliance-flags.csv",
            [
                "id",
                "kind",
                "severity",
                "blocking",
                "agreement",
                "message",
                "opened",
                "resolved",
                "resolved by",
                "note",
            ],
            [
                [
                    x.pk,
                    x.kind,
                    x.severity,
                    x.blocking,
                    x.agreement.name if x.agreement else "",
                    x.message,
                    x.opened_at.isoformat(),
                    x.resolved_at.isoformat() if x.resolved_at else "",
                    x.resolved_by or ("system" if x.auto_cleared else ""),
                    x.resolution_note,
                ]
                for x in flags
            ],
        )
    return render(
        request,
        "agreements/flag_list.html",
        {"page": _paginate(request, flags), "state": state, "q": q},
    )


@org_view("flag.view", post="flag.resolve")
def flag_detail(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    flag = object_for_member(request, ComplianceFlag, pk, "flag.view")
    form = f.ResolveForm(request.POST or None, instance=copy.copy(flag))
    if request.method == "POST":
        object_for_member(request, ComplianceFlag, pk, "flag.resolve")
        return _form_page(
            request,
            form,
            title=str(flag),
            back="",
            save=lambda d: services.flag_resolve(
                flag=flag, user=signed_in_user(request), note=d["resolution_note"]
            ),
            success=lambda _: _url("flag_detail", request, pk),
            template="agreements/flag_detail.html",
            extra={"flag": flag},
        )
    return render(request, "agreements/flag_detail.html", {"flag": flag, "form": form})


@org_view("flag.resolve")
@require_POST
def compliance_scan_now(request: OrgRequest, org_slug: str) -> HttpResponse:
    result = services.compliance_scan(organization=request.organization)
    messages.success(
        request,
        f"Scan finished: {len(result.raised)} new, {result.updated} still "
        f"open, {result.cleared} cleared.",
    )
    return redirect(_url("flag_list", request))


# --- documents -------------------------------------------------------------------------------


@org_view("document.upload")
def document_upload(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = object_for_member(request, Agreement, agreement_pk, "document.upload")
    form = f.DocumentForm(request.POST or None, request.FILES or None)
    return _form_page(
        request,
        form,
        title=f"Upload a document · {agreement}",
        back=_url("agreement_detail", request, agreement.pk),
        extra={"multipart": True},
        save=lambda d: services.document_upload(
            agreement=agreement,
            kind=d["kind"],
            title=d["title"],
            upload=d["file"],
            user=signed_in_user(request),
        ),
        success=lambda _: _url("agreement_detail", request, agreement.pk) + "#documents",
    )


@org_view("document.view")
def document_download(request: HttpRequest, org_slug: str, pk: int) -> FileResponse:
    document = object_for_member(request, AgreementDocument, pk, "document.view")
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.original_name,
        content_type="application/pdf",
    )
    response["X-Content-SHA256"] = document.sha256
    response["Cache-Control"] = "private, no-store"
    return response


# --- milestones ------------------------------------------------------------------------------


@org_view("agreement.view", post="agreement.edit")
def milestone_list(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = object_for_member(request, Agreement, agreement_pk, "agreement.view")
    form = f.PlanForm(request.POST or None)
    if request.method == "POST":
        object_for_member(request, Agreement, agreement_pk, "agreement.edit")
        return _form_page(
            request,
            form,
            title="Timeline",
            back="",
            save=lambda d: services.milestones_generate(agreement=agreement, start=d["start"]),
            success=lambda _: _url("milestone_list", request, agreement.pk),
            template="agreements/milestone_list.html",
            extra={
                "agreement": agreement,
                "milestones": agreement.milestones.all(),
                "today": timezone.localdate(),
            },
        )
    return render(
        request,
        "agreements/milestone_list.html",
        {
            "agreement": agreement,
            "milestones": agreement.milestones.all(),
            "form": form,
            "today": timezone.localdate(),
        },
    )


@org_view("agreement.edit")
def milestone_form(
    request: HttpRequest, org_slug: str, pk: int | None = None, agreement_pk: int | None = None
) -> HttpResponse:
    milestone = object_for_member(request, Milestone, pk, "agreement.edit") if pk else None
    agreement = (
        milestone.agreement
        if milestone
        else object_for_member(request, Agreement, agreement_pk, "agreement.edit")
    )
    form = f.MilestoneForm(request.POST or None, instance=copy.copy(milestone))
    back = _url("milestone_list", request, agreement.pk)
    return _form_page(
        request,
        form,
        title=f"Milestone · {agreement}",
        back=back,
        save=lambda d: services.milestone_save(agreement=agreement, data=d, milestone=milestone),
        success=lambda _: back,
    )


# --- history ---------------------------------------------------------------------------------

HISTORY: dict[str, tuple[type, str, str]] = {
    # kind: (model, permission, where "back" goes)
    "agreement": (Agreement, "agreement.view", "agreement_detail"),
    "terms": (AgreementTerms, "agreement.view", "terms_detail"),
    "physician": (Physician, "physician.view", "physician_detail"),
    "practice": (Practice, "physician.edit", "practice_edit"),
    "participation": (Participation, "agreement.view", "participation_edit"),
    "fmv": (FMVOpinion, "fmv.view", "fmv_edit"),
    "duty": (ManagementDuty, "agreement.view", "duty_edit"),
    "timesheet": (TimeSheet, "timelog.view", "timesheet_detail"),
    "meeting": (CommitteeMeeting, "committee.view", "committee_edit"),
    "flag": (ComplianceFlag, "flag.view", "flag_detail"),
    "document": (AgreementDocument, "document.view", "agreement_list"),
    "milestone": (Milestone, "agreement.view", "milestone_edit"),
}


# History names staff and shows every edit: ``history.view`` is not a physician's, on any
# record (their own included), so a physician gets 403 before any object is looked up.
@org_view("history.view")
def record_history(request: HttpRequest, org_slug: str, kind: str, pk: int) -> HttpResponse:
    """Who changed what, when, for any agreement record (its own permission is checked)."""
    if kind not in HISTORY:
        raise Http404
    model, permission, back_name = HISTORY[kind]
    obj = object_for_member(request, model, pk, permission)
    back = "" if back_name == "agreement_list" else _url(back_name, request, pk)
    return object_history(request, obj, back_url=back)


def month_choices(start: dt.date, end: dt.date) -> list[dt.date]:
    from .fees import months_between

    return months_between(start, end)
