"""The physician portal: my agreements, my hours by month and duty, submit, see status."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from comanage.core.http import signed_in_user
from comanage.core.inputs import InputError, parse_decimal
from comanage.core.views import check_permission, org_view

from . import fees, selectors, services
from .models import AgreementKind, AgreementStatus, TimeSheet


def _parse_month(value: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(f"{value}-01") if value else default
    except ValueError:
        return default


@org_view("timelog.view")
def physician_portal(request: HttpRequest, org_slug: str) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    physician = membership.physician if membership.role == "physician" else None
    if physician is None:
        return render(request, "agreements/portal.html", {"physician": None})
    agreements = list(
        selectors.agreements_for_physician(physician=physician).select_related("practice")
    )
    loggable = [
        a
        for a in agreements
        if a.kind == AgreementKind.CO_MANAGEMENT
        and a.status in (AgreementStatus.EXECUTED, AgreementStatus.ACTIVE)
    ]
    selected = None
    if loggable:
        wanted = request.GET.get("agreement") or request.POST.get("agreement")
        selected = next((a for a in loggable if str(a.pk) == wanted), loggable[0])
    this_month = timezone.localdate().replace(day=1)
    month = _parse_month(request.GET.get("month") or request.POST.get("month"), this_month)
    context: dict = {
        "physician": physician,
        "agreements": agreements,
        "loggable": loggable,
        "selected": selected,
        "month": month,
    }
    if selected is None:
        return render(request, "agreements/portal.html", context)
    duties = list(selected.duties.all())
    sheet = TimeSheet.objects.filter(agreement=selected, physician=physician, month=month).first()
    entries = {e.duty_id: e for e in sheet.entries.all()} if sheet else {}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        check_permission(request, "timelog.edit", physician)
        inputs = []
        for duty in duties:
            raw = request.POST.get(f"hours_{duty.pk}", "").strip() or "0"
            try:
                # Finite, not negative, at most a month of hours, two decimal places.
                hours = parse_decimal(
                    raw,
                    field="hours",
                    min_value=0,
                    max_value=24 * 31,
                    max_digits=7,
                    decimal_places=2,
                )
            except InputError as exc:
                errors.setdefault("hours", []).append(f"{duty.name}: {exc.reason}")
                continue
            assert hours is not None  # never blank: a blank field reads as "0"
            inputs.append(services.EntryInput(duty, hours, request.POST.get(f"desc_{duty.pk}", "")))
        if not errors:
            try:
                sheet = services.timesheet_save(
                    agreement=selected,
                    physician=physician,
                    month=month,
                    entries=inputs,
                    user=signed_in_user(request),
                    acting_physician=physician,
                )
                if request.POST.get("action") == "submit":
                    services.timesheet_submit(
                        timesheet=sheet, user=signed_in_user(request), acting_physician=physician
                    )
                    messages.success(request, f"{month:%B %Y} submitted for approval.")
                else:
                    messages.success(request, f"Hours for {month:%B %Y} saved as a draft.")
                url = reverse("physician_portal", args=[org_slug])
                return redirect(f"{url}?agreement={selected.pk}&month={month:%Y-%m}")
            except ValidationError as exc:
                errors = exc.message_dict
        entries = {}
        rows = [
            {
                "duty": d,
                "hours": request.POST.get(f"hours_{d.pk}", ""),
                "description": request.POST.get(f"desc_{d.pk}", ""),
            }
            for d in duties
        ]
    else:
        rows = [
            {
                "duty": d,
                "hours": entries[d.pk].hours if d.pk in entries else "",
                "description": entries[d.pk].description if d.pk in entries else "",
            }
            for d in duties
        ]
    participation = selected.participations.get(physician=physician)
    end = min(this_month, selected.term_end)
    months = [
        m
        for m in fees.months_between(selected.term_start, end)
        if selectors.participation_covers_month(participation, m)
    ]
    sheets = {s.month: s for s in TimeSheet.objects.filter(agreement=selected, physician=physician)}
    context.update(
        {
            "rows": rows,
            "sheet": sheet,
            "errors": errors,
            "months": list(reversed(months)),
            "history": [(m, sheets.get(m)) for m in reversed(months)][:12],
            "editable": sheet is None or sheet.status in ("draft", "returned"),
            "required": selectors.required_monthly_hours(agreement=selected),
        }
    )
    return render(request, "agreements/portal.html", context, status=400 if errors else 200)
