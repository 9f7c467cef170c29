"""Demo data for the savings app: example A on the cath-lab programme, plus a synthetic
year-to-date for 2026 so projections show. Called by ``manage.py seed_demo`` (scopes disabled)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django_scopes import scope

from agreements.models import Agreement, AgreementTerms, Participation, Physician, ProgrammeYear
from comanage.core.money import allocate_largest_remainder

from . import services
from .engine import USAGE_COLUMNS
from .models import CalculationKind, SavingsOpportunity

AGREEMENT_NAME = "Cardiac Cath Lab Shared Savings Programme"
EXAMPLE_A = Path("/work/shared/examples/example_a")
YTD_END = dt.date(2026, 6, 30)
OPPORTUNITIES = (
    ("A", "Closure devices", ["A1", "A2"], None, Decimal("100000")),
    ("B", "Wires/contrast", ["B1", "B2"], Decimal("450.00"), Decimal("60000")),
    ("C", "Balloons", ["C1", "C2"], None, Decimal("20000")),
)


def _physicians(organization: Any, agreement: Agreement) -> None:
    """Make sure example A's four physicians exist and take part (the import checks NPIs)."""
    with open(EXAMPLE_A / "physicians.csv") as handle:
        for row in csv.DictReader(handle):
            physician, _ = Physician.objects.get_or_create(
                organization=organization,
                npi=row["npi"],
                defaults={
                    "last_name": row["last_name"],
                    "first_name": row["first_name"],
                    "specialty": "Interventional cardiology",
                },
            )
            Participation.objects.get_or_create(
                organization=organization,
                agreement=agreement,
                physician=physician,
                defaults={
                    "join_date": dt.date.fromisoformat(row["join_date"]),
                    "termination_date": dt.date.fromisoformat(row["termination_date"])
                    if row["termination_date"]
                    else None,
                    "for_cause": row["for_cause"] == "true",
                    "termination_reason": "Severity fell beyond tolerance (committee)"
                    if row["for_cause"] == "true"
                    else "",
                },
            )


def _synthetic_ytd(rng: random.Random) -> str:
    """Jan-Jun 2026 for the three continuing physicians, a little better than 2025."""
    npis = ["1000000004", "1000000012", "1000000020"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(USAGE_COLUMNS)
    day = dt.date(2026, 1, 1)
    case = 0
    while day <= YTD_END:
        for _ in range(rng.choice((0, 1, 1, 2))):
            npi = rng.choice(npis)
            federal = rng.random() < 0.6
            notice = (day - dt.timedelta(days=rng.randint(2, 9))).isoformat()
            # The programme works: a third of the cases now close without a device.
            closure = [] if rng.random() < 0.35 else [("A2" if rng.random() < 0.85 else "A1", "1")]
            items = [*closure, ("B2", "1"), ("C2" if rng.random() < 0.2 else "C1", "1")]
            severity = rng.choice(("1.9", "2.0", "2.1"))
            for item, qty in items:
                writer.writerow(
                    [
                        f"y{case}",
                        day.isoformat(),
                        "CATH",
                        npi,
                        "medicare" if federal else "commercial",
                        "true" if federal else "false",
                        item,
                        qty,
                        PRICES_2026[item],
                        severity,
                        notice,
                        "true",
                        "false",
                    ]
                )
            case += 1
        day += dt.timedelta(days=1)
    return out.getvalue()


PRICES_2026 = {
    "A1": "1262.50",
    "A2": "960.00",
    "B1": "600.00",
    "B2": "425.00",
    "C1": "300.00",
    "C2": "270.00",
}


def seed(*, organization: Any, users: dict[str, Any], password: str, stdout: Any) -> None:
    agreement = Agreement.objects.filter(organization=organization, name=AGREEMENT_NAME).first()
    if agreement is None:
        return
    year1 = ProgrammeYear.objects.filter(agreement=agreement, start=dt.date(2025, 1, 1)).first()
    year2 = ProgrammeYear.objects.filter(agreement=agreement, start=dt.date(2026, 1, 1)).first()
    if year1 is None:
        return
    admin = users.get("administrator")
    with scope(organization=organization):
        _physicians(organization, agreement)
        if not SavingsOpportunity.objects.filter(agreement=agreement).exists():
            terms = AgreementTerms.objects.filter(agreement=agreement).order_by("version").first()
            cap = terms.distribution_cap if terms and terms.distribution_cap else None
            targets = (
                [o[4] for o in OPPORTUNITIES]
                if cap is None
                else allocate_largest_remainder(cap, [o[4] for o in OPPORTUNITIES])
            )
            for (key, name, items, floor, _), target in zip(OPPORTUNITIES, targets, strict=True):
                # Seeding writes the signing-time records directly (the agreement may already
                # be executed in the demo, which would make a service call an amendment).
                SavingsOpportunity.objects.create(
                    organization=organization,
                    agreement=agreement,
                    key=key,
                    name=name,
                    case_types=["CATH"],
                    item_codes=items,
                    floor_per_case=floor,
                    savings_target=target,
                    base_year=2024,
                    created_by=admin,
                )
        files = [
            ("usage", "base", None, 2024, EXAMPLE_A / "usage_2024.csv"),
            ("prices", "programme", year1, None, EXAMPLE_A / "prices_2025.csv"),
            ("usage", "programme", year1, None, EXAMPLE_A / "usage_2025.csv"),
        ]
        for kind, period, year, base_year, path in files:
            services.data_import_from_path(
                agreement=agreement,
                kind=kind,
                period=period,
                programme_year=year,
                base_year=base_year,
                path=path,
                user=admin,
            )
        services.savings_calculation_run(programme_year=year1, user=admin)
        if year2 is not None:
            rng = random.Random(2026)  # noqa: S311 - deterministic demo data, not security
            price_text = "item_code,unit_cost\n" + "".join(
                f"{k},{v}\n" for k, v in PRICES_2026.items()
            )
            for kind, name, text in (
                ("prices", "prices_2026.csv", price_text),
                ("usage", "usage_2026_ytd.csv", _synthetic_ytd(rng)),
            ):
                data_import = services.data_import_receive(
                    agreement=agreement,
                    kind=kind,
                    period="programme",
                    programme_year=year2,
                    upload=ContentFile(text.encode(), name=name),
                    user=admin,
                )
                services.data_import_apply(data_import=data_import)
            services.savings_calculation_run(
                programme_year=year2, user=admin, kind=CalculationKind.PROJECTION, as_of=YTD_END
            )
        _item_master(organization, admin)
    stdout.write(f"  savings: example A imported for {agreement.name}; 2026 projection ready")


ITEM_MASTER = """item_code,description,manufacturer,category,unit_of_measure
A1,"Vascular closure device, 6F, collagen plug",Terumo,Closure devices,EA
A2,"Vascular closure device, 8F, suture-mediated",Abbott,Closure devices,EA
B1,"Guidewire, 0.014 in, 190 cm, hydrophilic",Boston Scientific,Wires and contrast,EA
B2,"Contrast medium, iohexol 350, 100 mL",GE HealthCare,Wires and contrast,BT
C1,"Balloon catheter, 2.5 x 15 mm, semi-compliant",Medtronic,Balloons,EA
C2,"Balloon catheter, 3.0 x 12 mm, non-compliant",Boston Scientific,Balloons,EA
D1,"Drug-eluting stent, 3.0 x 18 mm, everolimus",Abbott,Stents,EA
D2,"Drug-eluting stent, 3.5 x 23 mm, zotarolimus",Medtronic,Stents,EA
E1,"Introducer sheath, 6F, radial, 11 cm",Terumo,Access,EA
E2,"Guide catheter, 6F, JL4",Medtronic,Access,EA
"""


def _item_master(organization: Any, admin: Any) -> None:
    """The cath lab's item master (the opportunities' items and a few more), applied."""
    from comanage.core.master_imports import master_import_apply_now

    item_import = services.item_import_receive(
        organization=organization,
        upload=ContentFile(ITEM_MASTER.encode(), name="cath_lab_item_master.csv"),
        user=admin,
    )
    master_import_apply_now(
        instance=item_import,
        apply=lambda *, instance, user: services.item_import_apply(item_import=instance, user=user),
        user=admin,
    )
