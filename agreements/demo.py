"""Demo data for ``manage.py seed_demo``: a practice, physicians (example A's NPIs), a
co-management agreement shaped like spec example C and a shared-savings agreement shaped like
example A. Dates are fixed; only the compliance flags depend on today. The indicators and
savings seeders attach their data to the two agreements by name: keep the names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from comanage.core.models import Membership, Organization, Role, User

from . import services
from .fees import months_between
from .models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    CommitteeMeeting,
    FixedFeeMode,
    FMVOpinion,
    ManagementDuty,
    Milestone,
    MilestoneStatus,
    Participation,
    Physician,
    Practice,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)

CO_MANAGEMENT_NAME = "Orthopedic Service Line Co-Management"
SHARED_SAVINGS_NAME = "Cardiac Cath Lab Shared Savings Programme"
D = Decimal

PHYSICIANS = [  # npi, first, last, specialty
    ("1000000004", "Ann", "Adams", "Interventional cardiology"),
    ("1000000012", "Bo", "Baker", "Interventional cardiology"),
    ("1000000020", "Cy", "Clark", "Cardiology"),
    ("1000000038", "Dee", "Diaz", "Cardiology"),
    ("1234567893", "Eli", "Evans", "Orthopedic surgery"),
    ("1000000046", "Fay", "Foster", "Orthopedic surgery"),
]
# 2025: 11 months of 134 h and 138 h in December = 1,612 approved hours (example C).
DUTIES = [  # name, required, max, description
    (
        "Quality and outcomes committee leadership",
        D("50"),
        D("80"),
        "Chair the quality committee; review outcomes and peer review cases.",
    ),
    (
        "Supply chain and implant standardisation",
        D("45"),
        D("70"),
        "Vendor evaluation, implant formulary, value analysis.",
    ),
    (
        "Protocol development and care pathways",
        D("38"),
        D("60"),
        "Joint replacement pathway, ERAS protocol, discharge planning.",
    ),
]


def _user(email: str, first: str, last: str, password: str) -> User:
    user, created = User.objects.get_or_create(
        email=email, defaults={"first_name": first, "last_name": last}
    )
    if created:
        user.set_password(password)
        user.save()
    return user


def _sheet(
    agreement: Agreement,
    physician: Physician,
    duties: list[ManagementDuty],
    month: dt.date,
    hours: list[Decimal],
    status: str,
    reviewer: User | None,
) -> None:
    now = timezone.now()
    sheet = TimeSheet.objects.create(
        organization=agreement.organization,
        agreement=agreement,
        physician=physician,
        month=month,
        status=status,
        submitted_at=now if status != TimeSheetStatus.DRAFT else None,
        reviewed_by=reviewer if status == TimeSheetStatus.APPROVED else None,
        reviewed_at=now if status == TimeSheetStatus.APPROVED else None,
    )
    for duty, h in zip(duties, hours, strict=True):
        TimeEntry.objects.create(
            organization=agreement.organization,
            timesheet=sheet,
            duty=duty,
            hours=h,
            description=f"{duty.name.split(' ')[0]} work, {month:%B %Y}",
        )


def seed(*, organization: Organization, users: dict[str, User], password: str, stdout: Any) -> None:
    org = organization
    admin = users.get(Role.ADMINISTRATOR)
    practice = Practice.objects.create(
        organization=org,
        name="Heart & Vascular Associates",
        tax_id="12-3456789",
        contact_name="Morgan Lee",
        contact_email=f"office@hva.{org.slug}.example",
    )
    ortho = Practice.objects.create(
        organization=org, name="Summit Orthopedic Partners", contact_name="Riley Chen"
    )
    physicians = {}
    for npi, first, last, specialty in PHYSICIANS:
        physicians[last] = Physician.objects.create(
            organization=org,
            npi=npi,
            first_name=first,
            last_name=last,
            specialty=specialty,
            practice=ortho if "Ortho" in specialty else practice,
            email=f"{first.lower()}.{last.lower()}@{org.slug}.example",
        )
    for email, last in (
        (f"physician@{org.slug}.example", "Adams"),
        (f"physician2@{org.slug}.example", "Baker"),
    ):
        p = physicians[last]
        user = _user(email, p.first_name, p.last_name, password)
        Membership.objects.create(organization=org, user=user, role=Role.PHYSICIAN, physician=p)

    # --- Co-management (spec example C) ------------------------------------------------------
    co = services.agreement_create(
        organization=org,
        user=admin,
        data={
            "kind": AgreementKind.CO_MANAGEMENT,
            "name": CO_MANAGEMENT_NAME,
            "practice": practice,
            "service_line": "orthopedics",
            "term_start": dt.date(2024, 1, 1),
            "term_end": dt.date(2026, 12, 31),
            "program_administrator": "Meridian Programme Administration LLC",
            "administrator_contact": admin,
        },
    )
    services.terms_update(
        terms=co.terms.get(),
        user=admin,
        data={"annual_fixed_fee": D("400000.00"), "incentive_pool": D("400000.00")},
    )
    duties = [
        ManagementDuty.objects.create(
            organization=org,
            agreement=co,
            name=name,
            required_monthly_hours=req,
            max_monthly_hours=mx,
            description=desc,
        )
        for name, req, mx, desc in DUTIES
    ]
    co_members = [physicians["Adams"], physicians["Evans"], physicians["Foster"]]
    for p in co_members:
        Participation.objects.create(
            organization=org, agreement=co, physician=p, join_date=dt.date(2024, 1, 1)
        )
    FMVOpinion.objects.create(
        organization=org,
        agreement=co,
        valuator="Valuation Partners LLC",
        issue_date=dt.date(2023, 11, 15),
        effective_start=dt.date(2024, 1, 1),
        effective_end=dt.date(2026, 12, 31),
        total_max_annual=D("800000.00"),
        fixed_mode=FixedFeeMode.HOURLY,
        fixed_hours=D("1600"),
        hourly_rate=D("250.00"),
        max_incentive=D("400000.00"),
        rate_p25=D("180.00"),
        rate_p50=D("220.00"),
        rate_p75=D("260.00"),
        rate_p90=D("310.00"),
    )
    services.agreement_transition(agreement=co, to_status="in_negotiation", user=admin)
    services.agreement_transition(
        agreement=co,
        to_status="executed",
        user=admin,
        executed_on=dt.date(2023, 12, 14),
        signatories="Catherine Ortiz, CEO, "
        + org.name
        + "\nDr Ann Adams, Heart & Vascular Associates",
    )
    services.agreement_transition(agreement=co, to_status="active", user=admin)
    # Approved hours: the group's monthly total is split across the three physicians
    # (Adams logs most of it). 2025 totals 1,612 hours.
    for month in months_between(dt.date(2024, 1, 1), dt.date(2025, 12, 31)):
        total = D("138") if month.month == 12 else D("134")
        if month.year == 2024:
            total = D("136")
        shares = [
            (co_members[0], [D("30"), D("25"), D("20")]),
            (co_members[1], [D("12"), D("12"), D("10")]),
        ]
        rest = total - sum(sum(h) for _, h in shares)
        shares.append((co_members[2], [rest - D("15"), D("8"), D("7")]))
        for physician, hours in shares:
            _sheet(co, physician, duties, month, hours, TimeSheetStatus.APPROVED, admin)
    # 2026 up to last month: approved, except the last two months (submitted, then draft).
    today = timezone.localdate()
    recent = [
        m
        for m in months_between(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
        if m < today.replace(day=1)
    ]
    for index, month in enumerate(recent):
        from_end = len(recent) - index
        if from_end > 2:
            for physician, hours in (
                (co_members[0], [D("30"), D("25"), D("20")]),
                (co_members[1], [D("12"), D("12"), D("10")]),
                (co_members[2], [D("10"), D("8"), D("7")]),
            ):
                _sheet(co, physician, duties, month, hours, TimeSheetStatus.APPROVED, admin)
        else:
            status = TimeSheetStatus.SUBMITTED if from_end == 2 else TimeSheetStatus.DRAFT
            _sheet(co, co_members[0], duties, month, [D("30"), D("25"), D("20")], status, None)
    # Quarterly committee meetings; 2025 Q3 has none (the scan flags it).
    for quarter_month in (2, 5, 8, 11):
        for year in (2024, 2025, 2026):
            held = dt.date(year, quarter_month, 12)
            if (year, quarter_month) == (2025, 8) or held >= today:
                continue
            meeting = CommitteeMeeting.objects.create(
                organization=org,
                agreement=co,
                held_on=held,
                hospital_attendees="Erin Walsh, COO\nPat Kim, Director of Perioperative Services",
                administrator_attendees="Alex Morgan",
                minutes=f"Reviewed {held:%B} quality dashboard, implant spend and pathway "
                "adherence. Actions assigned.",
            )
            present = co_members if quarter_month != 5 else co_members[:2]
            meeting.physicians_present.set(present)
    for i, (name, days, owner) in enumerate(services.DEFAULT_PLAN):
        due = dt.date(2023, 9, 15) + dt.timedelta(days=days)
        Milestone.objects.create(
            organization=org,
            agreement=co,
            name=name,
            position=i,
            owner=owner,
            due_date=due,
            status=MilestoneStatus.DONE,
            completed_on=due,
        )

    # --- Shared savings (spec example A) -----------------------------------------------------
    ss = services.agreement_create(
        organization=org,
        user=admin,
        data={
            "kind": AgreementKind.SHARED_SAVINGS,
            "name": SHARED_SAVINGS_NAME,
            "practice": practice,
            "service_line": "cardiovascular",
            "term_start": dt.date(2025, 1, 1),
            "program_administrator": "Meridian Programme Administration LLC",
            "administrator_contact": admin,
            "patient_notice_process": "Notice given at the pre-procedure visit, before consent; "
            "patients may review the agreement and opt out.",
            "quality_safeguards": "All devices remain available; severity and key quality "
            "indicators compared with the base year (±10%).",
        },
    )
    services.terms_update(
        terms=ss.terms.get(),
        user=admin,
        data={
            "admin_fee_monthly": D("3000.00"),
            "physician_share_pct": D("50"),
            "distribution_cap": D("750000.00"),
        },
    )
    for last in ("Adams", "Baker", "Clark", "Diaz"):
        Participation.objects.create(
            organization=org,
            agreement=ss,
            physician=physicians[last],
            join_date=dt.date(2025, 1, 1),
        )
    Participation.objects.filter(agreement=ss, physician=physicians["Diaz"]).update(
        termination_date=dt.date(2025, 8, 15),
        for_cause=True,
        termination_reason="severity fell from 2.10 to 1.78 (−15.2%)",
    )
    FMVOpinion.objects.create(
        organization=org,
        agreement=ss,
        valuator="Valuation Partners LLC",
        issue_date=dt.date(2024, 11, 20),
        effective_start=dt.date(2025, 1, 1),
        effective_end=dt.date(2027, 12, 31),
        total_max_annual=D("400000.00"),
        fixed_mode=FixedFeeMode.ANNUAL,
        fixed_annual=D("0.00"),
        max_incentive=D("250000.00"),
    )
    services.agreement_transition(agreement=ss, to_status="in_negotiation", user=admin)
    services.agreement_transition(
        agreement=ss,
        to_status="executed",
        user=admin,
        executed_on=dt.date(2024, 12, 10),
        signatories="Catherine Ortiz, CEO\nDr Ann Adams",
    )
    services.agreement_transition(agreement=ss, to_status="active", user=admin)
    for year, quarter_month in [(y, m) for y in (2025, 2026) for m in (3, 6, 9, 12)]:
        held = dt.date(year, quarter_month, 5)
        if held >= today:
            continue
        meeting = CommitteeMeeting.objects.create(
            organization=org,
            agreement=ss,
            held_on=held,
            hospital_attendees="Erin Walsh, COO",
            administrator_attendees="Alex Morgan",
            minutes="Savings by opportunity, severity trend and patient-notice audit.",
        )
        meeting.physicians_present.set([physicians[n] for n in ("Adams", "Baker", "Clark")])
    services.milestones_generate(agreement=ss, start=dt.date(2024, 9, 1))
    Milestone.objects.filter(agreement=ss).update(status=MilestoneStatus.DONE)

    _roster(org, admin, physicians)

    result = services.compliance_scan(organization=org, notify=False)
    stdout.write(
        f"  agreements: 2 agreements, {len(physicians)} physicians, "
        f"{len(result.raised)} compliance flags"
    )
    assert co.status == AgreementStatus.ACTIVE and ss.status == AgreementStatus.ACTIVE


NPPES_HEADER = (
    '"NPI","Entity Type Code","Provider Organization Name (Legal Business Name)",'
    '"Provider Last Name (Legal Name)","Provider First Name","Provider Credential Text"\n'
)


def _roster(org: Organization, admin: User | None, physicians: dict[str, Physician]) -> None:
    """The physicians again as an NPPES-shaped roster, applied (every row unchanged), so the
    roster pages have a file to show."""
    from django.core.files.base import ContentFile
    from django_scopes import scope

    from comanage.core.master_imports import master_import_apply_now

    text = NPPES_HEADER + "".join(
        f'"{p.npi}","1","{p.practice.name if p.practice else ""}",'
        f'"{p.last_name.upper()}","{p.first_name.upper()}","MD"\n'
        for p in physicians.values()
    )
    with scope(organization=org):
        roster_import = services.roster_import_receive(
            organization=org, upload=ContentFile(text.encode(), name="nppes_roster.csv"), user=admin
        )
        master_import_apply_now(
            instance=roster_import,
            apply=lambda *, instance, user: services.roster_import_apply(
                roster_import=instance, user=user
            ),
            user=admin,
        )
