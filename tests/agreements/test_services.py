"""Agreement services: lifecycle and freezing, amendments, FMV rules, fees, time sheets,
compliance flags and the daily scan."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from agreements import fees, selectors, services
from agreements.models import (
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    ComplianceFlag,
    TimeSheetStatus,
)
from agreements.validators import npi_is_valid
from comanage.core.money import monthly_instalments
from tests import factories as f

D = Decimal


def make_agreement(world, **kwargs):  # type: ignore[no-untyped-def]
    data = {
        "kind": AgreementKind.CO_MANAGEMENT,
        "name": "Ortho co-management",
        "practice": f.PracticeFactory(organization=world.org),
        "service_line": "orthopedics",
        "term_start": dt.date(2025, 1, 1),
        "term_end": dt.date(2026, 12, 31),
    }
    data.update(kwargs)
    with world.scope():
        return services.agreement_create(
            organization=world.org, data=data, user=world.users["administrator"]
        )


def execute(world, agreement, today=dt.date(2025, 6, 1)):  # type: ignore[no-untyped-def]
    user = world.users["administrator"]
    if agreement.status == "draft":
        services.agreement_transition(
            agreement=agreement, to_status="in_negotiation", user=user, today=today
        )
    services.agreement_transition(
        agreement=agreement,
        to_status="executed",
        user=user,
        executed_on=dt.date(2024, 12, 1),
        signatories="Jane CEO\nDr Ann Adams",
        today=today,
    )
    return agreement


# --- creation, programme years, term ---------------------------------------------------------


def test_shared_savings_defaults_to_three_programme_years(world):
    agreement = make_agreement(world, kind=AgreementKind.SHARED_SAVINGS, term_end=None)
    with world.scope():
        years = list(agreement.programme_years.values_list("start", "end"))
        terms = agreement.terms.get()
    assert agreement.term_end == dt.date(2027, 12, 31)
    assert years == [
        (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        (dt.date(2027, 1, 1), dt.date(2027, 12, 31)),
    ]
    assert terms.physician_share_pct == D("50") and terms.hours_shortfall_policy == "hold"


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (dt.date(2025, 1, 1), dt.date(2024, 12, 31), "term_end"),
        (dt.date(2025, 1, 1), dt.date(2025, 6, 30), "term_end"),
    ],
)
def test_it_refuses_a_bad_term(world, start, end, field):
    with pytest.raises(ValidationError) as exc:
        make_agreement(world, term_start=start, term_end=end)
    assert field in exc.value.message_dict
    with world.scope():
        assert (
            not world.org.pk
            or not __import__("agreements.models").models.Agreement.objects.exists()
        )


def test_it_refuses_overlapping_programme_years_and_keeps_the_old_ones(world):
    agreement = make_agreement(world)
    with world.scope():
        with pytest.raises(ValidationError) as exc:
            services.programme_years_set(
                agreement=agreement,
                ranges=[
                    (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
                    (dt.date(2025, 12, 1), dt.date(2026, 12, 31)),
                ],
            )
        assert "overlaps" in exc.value.message_dict["programme_years"][0]
        assert agreement.programme_years.count() == 2


# --- lifecycle and freezing ------------------------------------------------------------------


def test_lifecycle_freezes_terms_and_requires_fmv_to_activate(world):
    agreement = make_agreement(world)
    with world.scope():
        with pytest.raises(ValidationError) as exc:
            services.agreement_transition(agreement=agreement, to_status="active", user=None)
        assert "status" in exc.value.message_dict
        services.agreement_transition(agreement=agreement, to_status="in_negotiation", user=None)
        with pytest.raises(ValidationError) as exc:
            services.agreement_transition(
                agreement=agreement,
                to_status="executed",
                user=None,
                executed_on=dt.date(2024, 12, 1),
                signatories="",
            )
        assert "signatories" in exc.value.message_dict
        execute(world, agreement)
        assert agreement.executed_on == dt.date(2024, 12, 1)
        terms = agreement.terms.get()
        with pytest.raises(ValidationError) as exc:
            services.terms_update(terms=terms, data={"annual_fixed_fee": D("1")}, user=None)
        assert "frozen" in exc.value.message_dict["annual_fixed_fee"][0]
        terms.refresh_from_db()
        assert terms.annual_fixed_fee is None
        with pytest.raises(ValidationError):
            services.agreement_update(
                agreement=agreement, data={"term_end": dt.date(2027, 12, 31)}, user=None
            )
        # Activation needs an FMV opinion covering every programme year.
        f.FMVOpinionFactory(
            agreement=agreement,
            effective_start=dt.date(2025, 1, 1),
            effective_end=dt.date(2025, 12, 31),
        )
        with pytest.raises(ValidationError) as exc:
            services.agreement_transition(agreement=agreement, to_status="active", user=None)
        assert "programme year 2" in " ".join(exc.value.message_dict["status"])
        f.FMVOpinionFactory(
            agreement=agreement,
            effective_start=dt.date(2025, 1, 1),
            effective_end=dt.date(2026, 12, 31),
        )
        services.agreement_transition(agreement=agreement, to_status="active", user=None)
        agreement.refresh_from_db()
        assert agreement.status == AgreementStatus.ACTIVE
        with pytest.raises(ValidationError):
            services.agreement_transition(
                agreement=agreement, to_status="expired", user=None, today=dt.date(2025, 6, 1)
            )
        services.agreement_transition(
            agreement=agreement,
            to_status="terminated",
            user=None,
            reason="Service line closed",
            today=dt.date(2025, 6, 1),
        )
        assert agreement.terminated_on == dt.date(2025, 6, 1)


def test_amendment_is_versioned_and_selected_by_programme_year(world):
    agreement = make_agreement(world)
    with world.scope():
        services.terms_update(
            terms=agreement.terms.get(),
            data={"annual_fixed_fee": D("400000.00"), "incentive_pool": D("400000.00")},
            user=None,
        )
        execute(world, agreement)
        with pytest.raises(ValidationError) as exc:
            services.amendment_create(
                agreement=agreement,
                effective_from=dt.date(2025, 5, 1),
                data={},
                reason="late",
                user=None,
                today=dt.date(2025, 6, 1),
            )
        assert "future" in exc.value.message_dict["effective_from"][0]
        with pytest.raises(ValidationError) as exc:
            services.amendment_create(
                agreement=agreement,
                effective_from=dt.date(2026, 1, 1),
                data={"physician_share_pct": D("60")},
                reason="x",
                user=None,
                today=dt.date(2025, 6, 1),
            )
        assert "physician_share_pct" in exc.value.message_dict
        assert agreement.terms.count() == 1
        v2 = services.amendment_create(
            agreement=agreement,
            effective_from=dt.date(2026, 1, 1),
            data={"annual_fixed_fee": D("420000.00")},
            reason="Added duty",
            user=None,
            today=dt.date(2025, 6, 1),
        )
        assert v2.version == 2 and v2.incentive_pool == D("400000.00")  # copied
        year1, year2 = agreement.programme_years.all()
        assert selectors.terms_for_year(programme_year=year1).version == 1
        assert selectors.terms_for_year(programme_year=year2).annual_fixed_fee == D("420000.00")


# --- FMV -------------------------------------------------------------------------------------


def fmv_data(**kwargs):  # type: ignore[no-untyped-def]
    data = {
        "valuator": "VP",
        "issue_date": dt.date(2024, 11, 1),
        "effective_start": dt.date(2025, 1, 1),
        "effective_end": dt.date(2026, 12, 31),
        "total_max_annual": D("800000"),
        "fixed_mode": "hourly",
        "fixed_hours": D("1600"),
        "hourly_rate": D("250"),
        "max_incentive": D("400000"),
        "rate_p25": D("180"),
        "rate_p50": D("220"),
        "rate_p75": D("260"),
        "rate_p90": D("310"),
    }
    data.update(kwargs)
    return data


def test_fmv_validations(world):
    agreement = make_agreement(world)
    with world.scope():
        opinion, warnings = services.fmv_opinion_save(agreement=agreement, data=fmv_data())
        assert warnings == [] and opinion.fixed_portion == D("400000.00")
        with pytest.raises(ValidationError) as exc:
            services.fmv_opinion_save(
                agreement=agreement, data=fmv_data(max_incentive=D("400000.01"))
            )
        assert "max_incentive" in exc.value.message_dict
        with pytest.raises(ValidationError) as exc:
            services.fmv_opinion_save(
                agreement=agreement, data=fmv_data(hourly_rate=D("270"), fixed_hours=D("1000"))
            )
        assert "justification" in exc.value.message_dict
        _, warnings = services.fmv_opinion_save(
            agreement=agreement,
            data=fmv_data(
                hourly_rate=D("270"),
                fixed_hours=D("1000"),
                max_incentive=D("450000"),
                justification="Rare subspecialty",
            ),
        )
        assert warnings and "56.25% of the total maximum (above 50%)" in warnings[0]
        assert agreement.fmv_opinions.count() == 2


# --- fees ------------------------------------------------------------------------------------

MONTHS = fees.months_between(dt.date(2025, 1, 1), dt.date(2025, 12, 31))


def test_example_c_instalments_paid_in_full():
    hours = {m: D("134") for m in MONTHS[:11]} | {MONTHS[11]: D("138")}
    lines = fees.fee_schedule(
        annual_fee=D("400000.00"),
        months=MONTHS,
        required_hours=D("133"),
        approved_hours=hours,
        policy="hold",
    )
    assert [ln.instalment for ln in lines] == [D("33333.33")] * 11 + [D("33333.37")]
    assert sum(ln.approved_hours for ln in lines) == D("1612")
    assert all(ln.status == "payable" for ln in lines)
    assert sum(ln.amount_payable for ln in lines) == D("400000.00")


def test_hold_policy_holds_then_releases_when_made_up():
    hours = {m: D("140") for m in MONTHS}
    hours[MONTHS[2]] = D("100")  # March short by 33
    hours[MONTHS[11]] = D("0")  # December not logged
    lines = fees.fee_schedule(
        annual_fee=D("120000.00"),
        months=MONTHS,
        required_hours=D("133"),
        approved_hours=hours,
        policy="hold",
    )
    # March is made up by May (cumulative 140*4+100 = 660 >= 665? no; June: 800 >= 798 yes)
    assert lines[2].status == "payable" and "made up" in lines[2].note
    assert lines[11].status == "held" and lines[11].amount_payable == D("0.00")
    assert sum(ln.amount_payable for ln in lines) == D("110000.00")


def test_hold_policy_never_made_up_stays_held():
    hours = {m: D("133") for m in MONTHS}
    hours[MONTHS[0]] = D("130")
    lines = fees.fee_schedule(
        annual_fee=D("120000.00"),
        months=MONTHS,
        required_hours=D("133"),
        approved_hours=hours,
        policy="hold",
    )
    assert [ln.status for ln in lines].count("held") == 1 and lines[0].status == "held"


def test_prorate_and_ignore_policies_and_extra_hours_never_raise_the_fee():
    hours = {m: D("200") for m in MONTHS}
    hours[MONTHS[0]] = D("66.5")
    prorated = fees.fee_schedule(
        annual_fee=D("400000.00"),
        months=MONTHS,
        required_hours=D("133"),
        approved_hours=hours,
        policy="prorate",
    )
    assert prorated[0].status == "prorated"
    assert prorated[0].amount_payable == D("16666.67")  # 33,333.33 × 0.5 half-up
    assert prorated[1].amount_payable == D("33333.33")  # 200 h > 133 h: no more than the fee
    ignored = fees.fee_schedule(
        annual_fee=D("400000.00"),
        months=MONTHS,
        required_hours=D("133"),
        approved_hours={},
        policy="ignore",
    )
    assert sum(ln.amount_payable for ln in ignored) == D("400000.00")


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(min_value=0, max_value=10**11))
def test_twelve_instalments_always_sum_to_the_annual_fee(cents):
    annual = D(cents) / 100
    parts = monthly_instalments(annual)
    assert len(parts) == 12 and sum(parts) == annual
    assert all(p == parts[0] for p in parts[:11]) and parts[11] >= parts[0]
    lines = fees.fee_schedule(
        annual_fee=annual, months=MONTHS, required_hours=D("0"), approved_hours={}, policy="hold"
    )
    assert sum(ln.amount_payable for ln in lines) == annual


# --- time sheets -----------------------------------------------------------------------------


@pytest.fixture
def comanaged(world):  # type: ignore[no-untyped-def]
    agreement = make_agreement(world)
    with world.scope():
        services.terms_update(
            terms=agreement.terms.get(), data={"annual_fixed_fee": D("120000.00")}, user=None
        )
        duty = services.duty_save(
            agreement=agreement,
            data={
                "name": "Quality",
                "required_monthly_hours": D("10"),
                "max_monthly_hours": D("20"),
            },
        )
        services.participation_save(
            agreement=agreement,
            data={
                "physician": world.physician,
                "join_date": dt.date(2025, 1, 1),
                "leave_date": dt.date(2025, 6, 30),
            },
        )
        execute(world, agreement)
    return agreement, duty


def test_timesheet_flow_and_locking(world, comanaged):
    agreement, duty = comanaged
    admin = world.users["administrator"]
    with world.scope():
        with pytest.raises(ValidationError) as exc:
            services.timesheet_save(
                agreement=agreement,
                physician=world.physician,
                month=dt.date(2025, 2, 1),
                user=None,
                entries=[services.EntryInput(duty, D("25"), "x")],
            )
        assert "above the monthly maximum" in exc.value.message_dict["hours"][0]
        with pytest.raises(ValidationError) as exc:
            services.timesheet_save(
                agreement=agreement,
                physician=world.physician,
                month=dt.date(2025, 8, 1),
                user=None,
                entries=[services.EntryInput(duty, D("5"), "x")],
            )
        assert "did not take part" in exc.value.message_dict["month"][0]
        with pytest.raises(PermissionDenied):
            services.timesheet_save(
                agreement=agreement,
                physician=world.physician,
                month=dt.date(2025, 2, 1),
                user=None,
                acting_physician=world.other_physician,
                entries=[services.EntryInput(duty, D("5"), "x")],
            )
        sheet = services.timesheet_save(
            agreement=agreement,
            physician=world.physician,
            month=dt.date(2025, 2, 1),
            user=None,
            entries=[services.EntryInput(duty, D("12"), "Reviews")],
        )
        services.timesheet_submit(timesheet=sheet, user=None)
        assert [m.subject for m in mail.outbox][-1].startswith("Time sheet submitted")
        services.timesheet_return(timesheet=sheet, user=admin, note="Describe the reviews")
        assert (
            "administrator@" not in mail.outbox[-1].to[0] and "returned" in mail.outbox[-1].subject
        )
        services.timesheet_save(
            agreement=agreement,
            physician=world.physician,
            month=dt.date(2025, 2, 1),
            user=None,
            entries=[services.EntryInput(duty, D("12"), "Case reviews")],
        )
        sheet.refresh_from_db()
        services.timesheet_submit(timesheet=sheet, user=None)
        services.timesheet_approve(timesheet=sheet, user=admin)
        sheet.refresh_from_db()
        assert sheet.status == TimeSheetStatus.APPROVED and sheet.reviewed_by == admin
        with pytest.raises(ValidationError) as exc:
            services.timesheet_submit(timesheet=sheet, user=None)
        assert "already approved" in exc.value.message_dict["status"][0]
        with pytest.raises(ValidationError):
            services.timesheet_save(
                agreement=agreement,
                physician=world.physician,
                month=dt.date(2025, 2, 1),
                user=None,
                entries=[services.EntryInput(duty, D("1"), "y")],
            )
        assert sheet.entries.get().hours == D("12")
        year1 = agreement.programme_years.first()
        schedule = selectors.fixed_fee_schedule(programme_year=year1)
        assert schedule[1].approved_hours == D("12") and schedule[1].status == "payable"
        assert schedule[0].status == "held"
        blockers = selectors.approval_blockers(programme_year=year1)
        assert any("FMV" in b for b in blockers) and any("Time logs" in b for b in blockers)


# --- flags and the scan ----------------------------------------------------------------------


def test_flag_raise_is_keyed_and_resolution_records_who(world):
    with world.scope():
        flag, created = services.flag_raise(
            organization=world.org, kind="x", key="k1", message="one"
        )
        again, created2 = services.flag_raise(
            organization=world.org, kind="x", key="k1", message="two"
        )
        assert created and not created2 and again.pk == flag.pk
        assert ComplianceFlag.objects.get(pk=flag.pk).message == "two"
        with pytest.raises(ValidationError):
            services.flag_resolve(flag=flag, user=world.users["administrator"], note="")
        resolved = services.flag_resolve(
            flag=flag, user=world.users["administrator"], note="Checked"
        )
        assert resolved.resolved_by == world.users["administrator"] and resolved.resolved_at
        _, created3 = services.flag_raise(
            organization=world.org, kind="x", key="k1", message="back"
        )
        assert created3


def test_compliance_scan_raises_and_clears_each_flag(world, comanaged):
    agreement, duty = comanaged
    today = dt.date(2025, 4, 20)
    with world.scope():
        # A participant with an NPI that fails the check digit (imported before validation).
        bad = f.PhysicianFactory(organization=world.org, npi="1000000005")
        services.participation_save(
            agreement=agreement, data={"physician": bad, "join_date": dt.date(2025, 1, 1)}
        )
        f.FMVOpinionFactory(
            agreement=agreement,
            effective_start=dt.date(2025, 1, 1),
            effective_end=dt.date(2025, 6, 1),
        )
        sheet = services.timesheet_save(
            agreement=agreement,
            physician=world.physician,
            month=dt.date(2025, 1, 1),
            user=None,
            entries=[services.EntryInput(duty, D("15"), "Work")],
        )
        services.timesheet_submit(timesheet=sheet, user=None)
        services.timesheet_approve(timesheet=sheet, user=None)
        duty.max_monthly_hours = D("12")  # lowered directly: the scan must notice
        duty.save()
        mail.outbox.clear()
        result = services.compliance_scan(organization=world.org, today=today)
        kinds = {flag.kind for flag in result.raised}
        assert kinds == {
            "logs_missing",
            "committee_missing",
            "fmv_expiring",
            "hours_above_max",
            "npi_invalid",
        }
        missing = {f.key for f in result.raised if f.kind == "logs_missing"}
        # Adams: Feb, Mar (Jan approved); the bad-NPI physician: Jan, Feb, Mar
        assert len(missing) == 5
        assert any("administrator@riverside.example" in m.to for m in mail.outbox)
        assert any(m.to == ["physician@riverside.example"] for m in mail.outbox)
        # A rescan updates, never duplicates, and sends nothing new.
        mail.outbox.clear()
        again = services.compliance_scan(organization=world.org, today=today)
        assert again.raised == [] and again.updated == len(result.raised) and not mail.outbox
        # Fix every condition; the next scan clears them.
        duty.max_monthly_hours = D("20")
        duty.save()
        bad.npi = "1000000004"
        bad.save()
        f.FMVOpinionFactory(
            agreement=agreement,
            effective_start=dt.date(2025, 1, 1),
            effective_end=dt.date(2026, 12, 31),
        )
        services.committee_meeting_save(
            agreement=agreement,
            data={"held_on": dt.date(2025, 2, 10), "physicians_present": [world.physician]},
        )
        for physician in (world.physician, bad):
            for month in (1, 2, 3):
                sheet = agreement.timesheets.filter(
                    physician=physician, month=dt.date(2025, month, 1)
                ).first()
                if sheet is None or sheet.status != "approved":
                    sheet = services.timesheet_save(
                        agreement=agreement,
                        physician=physician,
                        month=dt.date(2025, month, 1),
                        user=None,
                        entries=[services.EntryInput(duty, D("10"), "Work")],
                    )
                    services.timesheet_submit(timesheet=sheet, user=None)
                    services.timesheet_approve(timesheet=sheet, user=None)
        cleared = services.compliance_scan(organization=world.org, today=today)
        assert cleared.cleared == len(result.raised) and cleared.raised == []
        assert not ComplianceFlag.objects.filter(resolved_at__isnull=True).exists()
        assert ComplianceFlag.objects.filter(auto_cleared=True).count() == len(result.raised)


def test_scan_raises_agreement_expiring_within_90_days(world, comanaged):
    agreement, _ = comanaged
    with world.scope():
        result = services.compliance_scan(
            organization=world.org, today=dt.date(2026, 11, 1), notify=False
        )
        assert "agreement_expiring" in {flag.kind for flag in result.raised}
        later = services.compliance_scan(
            organization=world.org, today=dt.date(2026, 6, 1), notify=False
        )
        assert later.cleared >= 1


def test_beat_task_scans_every_organization_in_its_scope(world, comanaged):
    from agreements.tasks import compliance_scan_all

    assert compliance_scan_all() == 2  # eager: riverside and lakeview
    with world.scope():
        assert ComplianceFlag.objects.filter(kind="committee_missing").exists()


def test_physician_npi_must_pass_luhn_and_be_unique(world):
    with world.scope():
        with pytest.raises(ValidationError) as exc:
            services.physician_save(
                organization=world.org,
                data={"npi": "1000000005", "first_name": "A", "last_name": "B"},
            )
        assert "check digit" in exc.value.message_dict["npi"][0]
        with pytest.raises(ValidationError) as exc:
            services.physician_save(
                organization=world.org,
                data={"npi": world.physician.npi, "first_name": "A", "last_name": "B"},
            )
        assert "already exists" in exc.value.message_dict["npi"][0]
    assert npi_is_valid("1000000004") and npi_is_valid("1234567893")


def test_terms_for_year_raises_without_terms(world):
    agreement = make_agreement(world)
    with world.scope():
        AgreementTerms.objects.filter(agreement=agreement).delete()
        with pytest.raises(AgreementTerms.DoesNotExist):
            selectors.terms_for_year(programme_year=agreement.programme_years.first())


def test_milestones_default_plan_and_overdue(world):
    agreement = make_agreement(world)
    with world.scope():
        plan = services.milestones_generate(agreement=agreement, start=dt.date(2025, 1, 1))
        assert [m.name for m in plan][0] == "Kick-off meeting"
        assert plan[-1].due_date == dt.date(2025, 4, 1)
        overdue = selectors.milestones_overdue(today=dt.date(2025, 2, 1))
        assert set(overdue) == set(plan[:2])
        with pytest.raises(ValidationError):
            services.milestones_generate(agreement=agreement, start=dt.date(2025, 1, 1))
