"""Runs, hashes and diffs; the report lifecycle and its refusals; freezing and verification;
payments; what-if without side effects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from adjudication import services
from adjudication.calculation import canonical_json, figures_diff
from adjudication.models import (
    AdjudicationReport,
    CalculationRun,
    Distribution,
    FrozenRecord,
    PaymentLine,
    PhysicianStatement,
    ReportStatus,
    ReportTransition,
)
from comanage.core.models import BusinessEvent
from tests.adjudication.conftest import advance, co_management_payload, render_task_noted

pytestmark = pytest.mark.django_db


def test_example_c_run_stores_figures_and_distribution_rows(world, recorded):
    run = recorded.run
    with world.scope():
        assert run.version == 1 and recorded.created
        assert run.results["incentive_earned"] == "300000.00"
        assert run.results["fixed_fee_payable"] == "400000.00"
        assert run.results["total_compensation"] == "700000.00"
        earned = [i["earned"] for i in run.figures["incentive"]["indicators"]]
        assert earned == ["88235.29", "70588.24", "94117.65", "47058.82", "0.00"]
        lines = run.figures["fixed_fee"]["lines"]
        assert [line["instalment"] for line in lines][-2:] == ["33333.33", "33333.37"]
        rows = Distribution.objects.filter(run=run, component="incentive").order_by("position")
        assert sum(r.amount for r in rows) == Decimal("300000.00")
        assert run.rules_version == "2026.1"
        assert recorded.report.status == ReportStatus.DRAFT


def test_same_inputs_give_the_same_hash_and_no_duplicate_run(world, co_management, recorded):
    _agreement, year = co_management
    with world.scope():
        again = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year),
            user=world.users["administrator"],
        )
        assert not again.created
        assert again.run.pk == recorded.run.pk
        assert again.run.calculation_hash == recorded.run.calculation_hash
        assert CalculationRun.objects.count() == 1


def test_changed_input_gives_a_new_version_with_a_diff(world, co_management, recorded):
    _agreement, year = co_management
    with world.scope():
        outcome = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year, scores={"pex": ("79.0", 300)}),
            user=world.users["administrator"],
        )
        assert outcome.created and outcome.run.version == 2
        assert outcome.run.calculation_hash != recorded.run.calculation_hash
        paths = {d["path"]: d for d in outcome.run.diff}
        assert paths["figures.incentive.indicators[pex].earned"]["old"] == "94117.65"
        assert paths["totals.incentive_earned"]["old"] == "300000.00"
        assert paths["totals.incentive_earned"]["new"] != "300000.00"
        recorded.report.refresh_from_db()
        assert recorded.report.status == ReportStatus.SUPERSEDED
        assert outcome.report.supersedes_id == recorded.report.pk


def test_canonical_json_and_flattened_diff():
    assert (
        canonical_json({"b": Decimal("1.50"), "a": [dt.date(2025, 1, 1)]})
        == '{"a":["2025-01-01"],"b":"1.50"}'
    )
    assert figures_diff({"x": [{"key": "a", "v": "1"}]}, {"x": [{"key": "a", "v": "2"}]}) == [
        {"path": "x[a].v", "old": "1", "new": "2"}
    ]
    with pytest.raises(TypeError):
        canonical_json({"money": 1.5})


def test_runs_are_never_edited(world, recorded):
    with world.scope(), pytest.raises(FrozenRecord):
        recorded.run.save()


def test_full_lifecycle_to_paid_with_trail_events_and_emails(
    world, recorded, django_capture_on_commit_callbacks
):
    # The e-mail leaves on commit; so does the draft's render task, noted but not rendered (the
    # draft's PDF is dropped at approval: the frozen one is rendered below).
    with render_task_noted() as renders, django_capture_on_commit_callbacks(execute=True):
        report = advance(world, recorded.report, "review", "submit")
    assert report.status == ReportStatus.SUBMITTED
    assert renders == [report.pk, report.pk]
    assert any("counsel@riverside.example" in m.to for m in mail.outbox)
    report = advance(world, report, "approve")
    assert report.status == ReportStatus.APPROVED and report.frozen_at
    with world.scope():
        report = services.report_render(report=report)
        assert report.pdf_sha256 and PhysicianStatement.objects.filter(report=report).count() == 2
        report = advance(world, report, "authorise")
        lines = list(PaymentLine.objects.filter(report=report))
        assert len(lines) == 13  # 12 instalments + the incentive
        assert sum(line.amount for line in lines) == Decimal("700000.00")
        for line in lines:
            services.payment_record(
                line=line,
                paid_amount=line.amount,
                paid_on=dt.date(2026, 2, 1),
                reference="ACH",
                user=world.users["administrator"],
            )
        report.refresh_from_db()
        assert report.status == ReportStatus.PAID
        steps = list(
            ReportTransition.objects.filter(report=report).values_list("to_status", "actor_name")
        )
        assert [s for s, _ in steps] == [
            "in_review",
            "submitted_to_counsel",
            "approved_by_counsel",
            "payment_authorised",
            "paid",
        ]
        assert steps[2][1] == "Counsel Riverside"
        names = set(BusinessEvent.objects.values_list("name", flat=True))
        assert {"report.approved", "payment.authorised", "payment.recorded"} <= names


def test_next_actor_is_emailed(world, recorded, django_capture_on_commit_callbacks):
    with render_task_noted(), django_capture_on_commit_callbacks(execute=True):
        advance(world, recorded.report, "review", "submit")
    assert any(m.to == ["counsel@riverside.example"] for m in mail.outbox)


@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("review", "counsel"),
        ("review", "ceo"),
        ("submit", "executive"),
        ("approve", "administrator"),
        ("approve", "ceo"),
        ("return", "administrator"),
        ("authorise", "counsel"),
        ("authorise", "administrator"),
    ],
)
def test_wrong_role_is_refused(world, recorded, action, role):
    report = recorded.report
    needs = {
        "review": (),
        "submit": ("review",),
        "approve": ("review", "submit"),
        "return": ("review", "submit"),
        "authorise": ("review", "submit", "approve"),
    }
    report = advance(world, report, *needs[action])
    with world.scope(), pytest.raises(services.TransitionForbidden):
        services.report_transition(report=report, action=action, user=world.users[role])


def test_wrong_state_is_refused_with_a_message(world, recorded):
    with world.scope(), pytest.raises(services.TransitionInvalid, match="only possible when"):
        services.report_transition(
            report=recorded.report, action="approve", user=world.users["counsel"]
        )


def test_return_needs_comments_and_goes_back_to_the_administrator(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    with world.scope(), pytest.raises(services.AdjudicationError, match="Comments are required"):
        services.report_transition(
            report=report, action="return", user=world.users["counsel"], comment="  "
        )
    report = advance(world, report, "return")
    assert report.status == ReportStatus.RETURNED
    report = advance(world, report, "review")
    assert report.status == ReportStatus.IN_REVIEW


def test_approval_refused_without_fmv_cover_and_with_a_blocking_flag(world, recorded):
    from agreements.models import ComplianceFlag, FMVOpinion

    report = advance(world, recorded.report, "review", "submit")
    with world.scope():
        FMVOpinion.objects.all().update(effective_start=dt.date(2025, 6, 1))
        ComplianceFlag.objects.create(
            organization=world.org,
            agreement=report.agreement,
            programme_year=report.programme_year,
            kind="notice",
            key="k1",
            blocking=True,
            message="Cases without notice.",
        )
        with pytest.raises(services.ApprovalRefused) as refused:
            services.report_transition(report=report, action="approve", user=world.users["counsel"])
        text = " ".join(refused.value.reasons)
        assert "FMV" in text and "Cases without notice." in text
        report.refresh_from_db()
        assert report.status == ReportStatus.SUBMITTED


def test_approved_report_is_frozen_and_a_rerun_never_alters_it(world, co_management, recorded):
    _agreement, year = co_management
    report = advance(world, recorded.report, "review", "submit", "approve")
    with world.scope():
        report = services.report_render(report=report)
        pdf_hash, pdf = report.pdf_sha256, bytes(report.pdf)
        report.status = ReportStatus.DRAFT
        with pytest.raises(FrozenRecord):
            report.save()
        outcome = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year, scores={"ssi": ("1.5", 400)}),
            user=world.users["administrator"],
        )
        assert outcome.created and outcome.report.supersedes_id == report.pk
        services.report_render(report=report)  # a second render changes nothing
        old = AdjudicationReport.objects.get(pk=report.pk)
        assert old.status == ReportStatus.APPROVED
        assert old.pdf_sha256 == pdf_hash and bytes(old.pdf) == pdf
        assert old.calculation_hash == recorded.run.calculation_hash


def test_verification_accepts_the_pdf_and_rejects_one_changed_byte(world, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve")
    with world.scope():
        report = services.report_render(report=report)
        pdf = bytes(report.pdf)
        assert services.report_verify(report=report, content=pdf).ok
        tampered = bytearray(pdf)
        tampered[len(tampered) // 2] ^= 0x01
        result = services.report_verify(report=report, content=bytes(tampered))
        assert not result.ok and "Not verified" in result.message
        assert result.calculation_intact


def test_pdf_is_deterministic_and_carries_the_figures(world, recorded):
    import io

    from pypdf import PdfReader

    from adjudication import pdf

    report = advance(world, recorded.report, "review", "submit", "approve")
    with world.scope():
        report = services.report_render(report=report)
        again = pdf.report_pdf(report=report)
        assert again == bytes(report.pdf)
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(again)).pages)
        # A name may wrap inside its table column: compare words, whatever the line breaks.
        text = " ".join(text.split())
        for figure in (
            "300,000.00",
            "88,235.29",
            "47,058.82",
            "33,333.37",
            "700,000.00",
            "Counsel Riverside",
            "Page 1 of",
        ):
            assert figure in text, figure
        statement = PhysicianStatement.objects.get(report=report, physician=world.physician)
        st_text = "".join(
            p.extract_text() for p in PdfReader(io.BytesIO(bytes(statement.pdf))).pages
        )
        assert "Ann Adams" in st_text and "350,000.00" in st_text


def test_payment_is_never_recorded_twice_and_only_after_authorisation(world, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve", "authorise")
    with world.scope():
        line = PaymentLine.objects.filter(report=report).first()
        services.payment_record(
            line=line,
            paid_amount=line.amount,
            paid_on=dt.date(2026, 1, 5),
            reference="1",
            user=world.users["administrator"],
        )
        with pytest.raises(services.PaymentRefused, match="already recorded"):
            services.payment_record(
                line=line,
                paid_amount=line.amount,
                paid_on=dt.date(2026, 1, 5),
                reference="2",
                user=world.users["administrator"],
            )
        other = PaymentLine.objects.filter(report=report, paid_on__isnull=True).first()
        with pytest.raises(services.PaymentRefused, match="must equal"):
            services.payment_record(
                line=other,
                paid_amount=Decimal("1.00"),
                paid_on=dt.date(2026, 1, 5),
                reference="",
                user=world.users["administrator"],
            )
        with pytest.raises(services.TransitionForbidden):
            services.payment_record(
                line=other,
                paid_amount=other.amount,
                paid_on=dt.date(2026, 1, 5),
                reference="",
                user=world.users["ceo"],
            )
        assert PaymentLine.objects.filter(report=report).count() == 13


def test_what_if_creates_and_changes_nothing(world, co_management, recorded, monkeypatch):
    _agreement, year = co_management
    monkeypatch.setattr(
        services,
        "calculation_gather",
        lambda *, programme_year, overrides: co_management_payload(
            world, programme_year, scores={"pex": ("70", 300)}
        ),
    )
    # The gathered payload above scores an indicator "pex"; the strict override parser reads the
    # year's definitions, which this world does not store: it is told "pex" is one of them.
    import types

    monkeypatch.setattr(
        services,
        "definitions_in_force",
        lambda *, programme_year: [types.SimpleNamespace(key="pex")],
    )
    models = [
        CalculationRun,
        Distribution,
        AdjudicationReport,
        ReportTransition,
        PaymentLine,
        PhysicianStatement,
        BusinessEvent,
    ]
    with world.scope():
        before = [m.objects.count() for m in models]
        comparison = services.scenario_compare(
            programme_year=year, overrides={"results": {"pex": {"score": "70"}}}
        )
        after = [m.objects.count() for m in models]
    assert before == after
    row = next(r for r in comparison.rows if r["key"] == "incentive_earned")
    assert row["official"] == "300000.00" and row["scenario"] != "300000.00"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_counsel_approving_at_once_only_one_succeeds(world, co_management, render_task_skipped):
    """Every transition here commits, so its render task runs: noted, not rendered (no PDF is
    read); the one approval that succeeds asks for one render."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (CI runs it)")
    import threading

    from django.db import close_old_connections

    from comanage.core.models import Membership, Role
    from tests import factories as f

    _agreement, year = co_management
    second = f.UserFactory(email="counsel2@riverside.example")
    f.MembershipFactory(organization=world.org, user=second, role=Role.COUNSEL)
    with world.scope():
        outcome = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year),
            user=world.users["administrator"],
        )
    report = advance(world, outcome.report, "review", "submit")
    results: list[str] = []
    barrier = threading.Barrier(2)

    def press(user):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            with world.scope():
                services.report_transition(report=report, action="approve", user=user)
            results.append("ok")
        except services.TransitionInvalid:
            results.append("refused")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=press, args=(u,)) for u in (world.users["counsel"], second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "refused"]
    assert render_task_skipped == [report.pk] * 3  # review, submit, the one approval
    with world.scope():
        assert (
            ReportTransition.objects.filter(report=report, to_status="approved_by_counsel").count()
            == 1
        )
    del Membership
