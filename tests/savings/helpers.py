"""Builders for the savings service tests: example A as records."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled

from agreements import models as am
from savings import services
from tests import factories as f

EXAMPLE_A = Path("/work/shared/examples/example_a")
USAGE_HEADER = (
    "case_id,service_date,case_type,physician_npi,payer,federal_program,item_code,"
    "quantity,unit_cost,severity_weight,notice_date,reviewed,opted_out"
)


def example_a_agreement(
    world,
    *,
    cap: Decimal | None = Decimal("1000000.00"),
    status: str = am.AgreementStatus.DRAFT,
    years: int = 2,
    admin_fee: Decimal = Decimal("3000.00"),
):
    """The cath-lab agreement of example A in org A (records only, no data)."""
    org = world.org
    with scopes_disabled():
        agreement = f.AgreementFactory(
            organization=org,
            kind=am.AgreementKind.SHARED_SAVINGS,
            name="Cardiac Cath Lab Shared Savings Programme",
            term_start=dt.date(2025, 1, 1),
            term_end=dt.date(2024 + years, 12, 31),
        )
        f.TermsFactory(
            agreement=agreement,
            admin_fee_monthly=admin_fee,
            physician_share_pct=Decimal("50"),
            distribution_cap=cap,
        )
        for number in range(1, years + 1):
            f.ProgrammeYearFactory(
                agreement=agreement,
                number=number,
                start=dt.date(2024 + number, 1, 1),
                end=dt.date(2024 + number, 12, 31),
            )
        with open(EXAMPLE_A / "physicians.csv") as handle:
            for row in csv.DictReader(handle):
                physician = am.Physician.objects.filter(organization=org, npi=row["npi"]).first()
                if physician is None:
                    physician = f.PhysicianFactory(
                        organization=org,
                        npi=row["npi"],
                        last_name=row["last_name"],
                        first_name=row["first_name"],
                    )
                f.ParticipationFactory(
                    agreement=agreement,
                    physician=physician,
                    join_date=dt.date.fromisoformat(row["join_date"]),
                    termination_date=dt.date.fromisoformat(row["termination_date"])
                    if row["termination_date"]
                    else None,
                    for_cause=row["for_cause"] == "true",
                )
    with world.scope():
        for key, name, items, floor, target in (
            ("A", "Closure devices", ["A1", "A2"], None, "100000.00"),
            ("B", "Wires/contrast", ["B1", "B2"], "450.00", "60000.00"),
            ("C", "Balloons", ["C1", "C2"], None, "20000.00"),
        ):
            services.opportunity_create(
                agreement=agreement,
                user=world.users["administrator"],
                data={
                    "key": key,
                    "name": name,
                    "case_types": ["CATH"],
                    "item_codes": items,
                    "floor_per_case": floor,
                    "savings_target": target,
                    "base_year": 2024,
                },
            )
        if status != am.AgreementStatus.DRAFT:
            am.Agreement.objects.filter(pk=agreement.pk).update(status=status)
            agreement.refresh_from_db()
    return agreement


def year(agreement, number: int):
    with scopes_disabled():
        return am.ProgrammeYear.objects.get(agreement=agreement, number=number)


def upload(name: str, content: str | bytes) -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def import_text(
    world,
    agreement,
    *,
    kind: str,
    period: str,
    name: str,
    content: str,
    programme_year=None,
    base_year=None,
):
    """Receive + apply synchronously (raises ImportRefused)."""
    data_import = services.data_import_receive(
        agreement=agreement,
        kind=kind,
        period=period,
        upload=upload(name, content),
        user=world.users["administrator"],
        programme_year=programme_year,
        base_year=base_year,
    )
    try:
        return services.data_import_apply(data_import=data_import)
    except services.ImportRefused:
        services.data_import_mark_failed(data_import=data_import)
        raise


def import_example_a(world, agreement):
    with world.scope():
        _import_example_a(world, agreement)


def _import_example_a(world, agreement):
    admin = world.users["administrator"]
    services.data_import_from_path(
        agreement=agreement,
        kind="usage",
        period="base",
        base_year=2024,
        path=EXAMPLE_A / "usage_2024.csv",
        user=admin,
    )
    services.data_import_from_path(
        agreement=agreement,
        kind="prices",
        period="programme",
        programme_year=year(agreement, 1),
        path=EXAMPLE_A / "prices_2025.csv",
        user=admin,
    )
    services.data_import_from_path(
        agreement=agreement,
        kind="usage",
        period="programme",
        programme_year=year(agreement, 1),
        path=EXAMPLE_A / "usage_2025.csv",
        user=admin,
    )


def usage_csv(rows: list[dict[str, str]]) -> str:
    """Rows of the canonical layout; missing fields take sensible defaults."""
    out = io.StringIO()
    out.write(USAGE_HEADER + "\n")
    defaults = {
        "service_date": "2025-03-01",
        "case_type": "CATH",
        "payer": "medicare",
        "federal_program": "true",
        "quantity": "1",
        "unit_cost": "100",
        "severity_weight": "2.0",
        "notice_date": "2025-02-20",
        "reviewed": "true",
        "opted_out": "false",
    }
    for row in rows:
        full = {**defaults, **row}
        out.write(",".join(full.get(c, "") for c in USAGE_HEADER.split(",")) + "\n")
    return out.getvalue()
