"""Safeguard flags a year's calculation raises (spec 4 split step 5; patients), and termination
for cause from a flag.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agreements.models import (
    ComplianceFlag,
    FlagSeverity,
    Participation,
    Physician,
)
from agreements.services import flag_raise
from comanage.core.audit import event_record
from comanage.core.models import User

from ..models import (
    SavingsCalculation,
)

SAFEGUARD_KINDS = {
    "severity_change": ("savings_severity", FlagSeverity.WARNING),
    "federal_case_rise": ("savings_federal_rise", FlagSeverity.WARNING),
    "missing_patient_notice": ("savings_patient_notice", FlagSeverity.WARNING),
    "quality_gate": ("savings_quality", FlagSeverity.CRITICAL),
    "no_entitled_physicians": ("savings_no_entitled", FlagSeverity.CRITICAL),
}


def _safeguard_flag_raise(
    *,
    calculation: SavingsCalculation,
    code: str,
    message: str,
    data: dict[str, Any],
    physician_id: str | None = None,
    physician: Physician | None = None,
    blocking: bool = False,
) -> ComplianceFlag:
    """One safeguard's flag: its kind and severity by ``code``, a key stable per agreement,
    year (and physician) and check, and the calculation it came from in its data."""
    year = calculation.programme_year
    kind, severity = SAFEGUARD_KINDS[code]
    subject = f"{physician_id}:" if physician_id is not None else ""
    flag, _created = flag_raise(
        organization=calculation.organization,
        kind=kind,
        key=f"savings:{calculation.agreement.pk}:{year.number}:{subject}{code}",
        message=message,
        agreement=calculation.agreement,
        programme_year=year,
        physician=physician,
        severity=severity,
        blocking=blocking,
        data={"calculation_id": calculation.pk, **data},
    )
    return flag


def safeguard_flags_raise(*, calculation: SavingsCalculation) -> list[ComplianceFlag]:
    """Raise a compliance flag for each safeguard the year trips, with the figures behind it.

    Keys are stable (agreement, year, physician, check) so a rerun updates, never duplicates."""
    result = calculation.result
    year = calculation.programme_year
    agreement = calculation.agreement
    physicians = {
        str(p.pk): p for p in Physician.objects.filter(participations__agreement=agreement)
    }
    flags = []
    for row in result["physicians"]:
        guard = row["safeguards"]
        physician = physicians.get(row["physician_id"])
        checks = []
        if guard["severity_flag"]:
            checks.append(
                (
                    "severity_change",
                    f"Average case severity of Dr {row['last_name']} moved from "
                    f"{guard['base_average_severity']} to "
                    f"{guard['current_average_severity']} "
                    f"({guard['severity_change_pct']}%), beyond the "
                    f"±{result['terms']['severity_tolerance_pct']}% tolerance.",
                )
            )
        if guard["federal_rise_flag"]:
            checks.append(
                (
                    "federal_case_rise",
                    f"Federal-programme cases of Dr {row['last_name']} rose from "
                    f"{guard['base_federal_cases']} (base year) to "
                    f"{guard['current_federal_cases']}.",
                )
            )
        if guard["notice_flag"]:
            checks.append(
                (
                    "missing_patient_notice",
                    f"{guard['cases_without_notice']} case(s) of Dr {row['last_name']} "
                    "have no patient-notice record.",
                )
            )
        for code, message in checks:
            flags.append(
                _safeguard_flag_raise(
                    calculation=calculation,
                    code=code,
                    message=message,
                    physician_id=row["physician_id"],
                    physician=physician,
                    data={
                        "check": code,
                        **guard,
                        "tolerance_pct": result["terms"]["severity_tolerance_pct"],
                    },
                )
            )
    for flag in result["flags"]:
        if flag["code"] == "quality_gate":
            flags.append(
                _safeguard_flag_raise(
                    calculation=calculation,
                    code="quality_gate",
                    message=f"Key quality indicators worse than baseline: {flag['message']}",
                    data={"key_indicators": result["key_indicators"]},
                )
            )
        elif flag["code"] == "no_entitled_physicians":
            # Spec 4 edge case "nobody entitled": a blocking compliance flag says why.
            flags.append(
                _safeguard_flag_raise(
                    calculation=calculation,
                    code="no_entitled_physicians",
                    message=f"Nothing is paid for {year.label}: {flag['message']}.",
                    blocking=True,
                    data={"withheld": result["withheld_no_entitled"]},
                )
            )
    return flags


@transaction.atomic
def participation_terminate_for_cause(
    *, flag: ComplianceFlag, termination_date: dt.date, reason: str, user: User | None
) -> Participation:
    """The programme committee terminates the flagged physician for cause; the flag is resolved
    with the decision. The physician forfeits the share of the year (spec 4 split step 5)."""
    flag = ComplianceFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.resolved_at is not None:
        raise ValidationError("This flag is already resolved.")
    if flag.physician_id is None or flag.agreement_id is None:
        raise ValidationError("This flag is not about a participating physician.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "Record the committee's reason."})
    participation = Participation.objects.select_for_update().get(
        agreement_id=flag.agreement_id, physician_id=flag.physician_id
    )
    if termination_date < participation.join_date:
        raise ValidationError(
            {"termination_date": "The termination date is before the physician joined."}
        )
    participation.termination_date = termination_date
    participation.for_cause = True
    participation.termination_reason = reason.strip()
    participation.save()
    flag.resolved_at = timezone.now()
    flag.resolved_by = user
    flag.resolution_note = (
        f"Terminated for cause on {termination_date.isoformat()} by the "
        f"programme committee: {reason.strip()}"
    )
    flag.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
    event_record(
        organization=flag.organization,
        name="savings.terminated_for_cause",
        actor=user,
        obj=participation,
        summary=flag.resolution_note[:300],
        data={"flag_id": flag.pk},
    )
    return participation
