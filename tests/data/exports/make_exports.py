"""Writes the hospital-shaped exports next to this script from the spec's examples A and D
(/work/shared/examples); run it again and the files hold the same rows. They are what a
materials system or a registry really hands over: own headers, title rows, US dates and
amounts, Y/N flags, NPIs with dashes, an Excel workbook with two sheets.

    /work/main/.venv/bin/python tests/data/exports/make_exports.py

* or_supply_usage_2025.csv: example A's 2025 usage as an "OR supply export": two title rows
  and a blank line above the header, M/D/YYYY and M/D/YY dates, $1,250.00 amounts, an extra
  "Ext Cost" column, Y/N and Yes/No flags, NPIs written 100-000-0004.
* cath_lab_2024.xlsx: example A's 2024 (base-year) usage in the second sheet ("Usage 2024"),
  after a notes sheet; service dates are Excel date cells (every third one a serial day
  number pasted as a value), one title row above the header,
  quantities and costs numbers, the federal flag TRUE/FALSE.
* contract_prices_2025.csv: example A's 2025 prices with a description and "$" amounts.
* quality_registry_cases.csv: example D's case file as a registry extract (title row, own
  headers, M/D/YYYY dates, Y/N flags).
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE_A = Path("/work/shared/examples/example_a")


def _rows(name: str) -> list[dict[str, str]]:
    with open(EXAMPLE_A / name, newline="") as handle:
        return list(csv.DictReader(handle))


def _us_date(iso: str, *, short: bool) -> str:
    if not iso:
        return ""
    day = dt.date.fromisoformat(iso)
    year = f"{day.year % 100:02d}" if short else str(day.year)
    return f"{day.month}/{day.day}/{year}"


def _dollars(text: str) -> str:
    return f"${Decimal(text):,.2f}"


def _npi(text: str) -> str:
    return f"{text[:3]}-{text[3:6]}-{text[6:]}"


def _yn(text: str, yes: str = "Y", no: str = "N") -> str:
    return "" if text == "" else (yes if text == "true" else no)


def or_supply_usage() -> None:
    header = [
        "Case #", "DOS", "Procedure", "Surgeon NPI", "Payor", "Federal", "Item #", "Qty",
        "Unit Cost", "Ext Cost", "Severity", "Notified", "Reviewed", "Opt Out",
    ]  # fmt: skip
    with open(HERE / "or_supply_usage_2025.csv", "w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\r\n")
        out.writerow(["Cardiac Cath Lab - OR Supply Usage Export"])
        out.writerow(["Run 01/15/2026 08:12", "Facility: Main Campus"])
        out.writerow([])
        out.writerow(header)
        for number, r in enumerate(_rows("usage_2025.csv")):
            ext = Decimal(r["quantity"]) * Decimal(r["unit_cost"])
            out.writerow(
                [
                    f" {r['case_id']} ",
                    _us_date(r["service_date"], short=number % 2 == 1),
                    r["case_type"],
                    _npi(r["physician_npi"]),
                    r["payer"],
                    _yn(r["federal_program"]),
                    r["item_code"],
                    r["quantity"],
                    _dollars(r["unit_cost"]),
                    _dollars(str(ext)),
                    r["severity_weight"],
                    _us_date(r["notice_date"], short=False),
                    _yn(r["reviewed"], "Yes", "No"),
                    _yn(r["opted_out"]),
                ]
            )


def cath_lab_workbook() -> None:
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "About"
    notes.append(["Cath lab supply usage, calendar year 2024"])
    notes.append(["Exported from the materials management system; one row per item per case."])
    sheet = book.create_sheet("Usage 2024")
    sheet.append(["Base year 2024 - all cath lab cases"])
    sheet.append(
        ["Encounter", "Date of Service", "DRG", "NPI", "Payer", "Federal Payer", "Item",
         "Quantity", "Cost Each", "Weight", "Notice Date", "Reviewed", "Opted Out"]
    )  # fmt: skip
    for number, r in enumerate(_rows("usage_2024.csv")):
        cell_date: object = dt.datetime.fromisoformat(r["service_date"])
        if number % 3 == 2:
            # Pasted as values: the Excel serial day number, no date format.
            cell_date = (dt.date.fromisoformat(r["service_date"]) - dt.date(1899, 12, 30)).days
        sheet.append(
            [
                r["case_id"],
                cell_date,
                r["case_type"],
                int(r["physician_npi"]),
                r["payer"],
                r["federal_program"] == "true",
                r["item_code"],
                int(Decimal(r["quantity"])),
                float(r["unit_cost"]),
                float(r["severity_weight"]),
                None,
                None,
                r["opted_out"] == "true",
            ]
        )
        if not isinstance(cell_date, int):
            sheet.cell(row=sheet.max_row, column=2).number_format = "m/d/yyyy"
        sheet.cell(row=sheet.max_row, column=9).number_format = '"$"#,##0.00'
    # (openpyxl stamps the save time into the workbook: a rerun holds the same cells, not the
    # same bytes.)
    book.properties.created = book.properties.modified = dt.datetime(2026, 1, 15, 8, 0)
    book.save(HERE / "cath_lab_2024.xlsx")


def contract_prices() -> None:
    with open(HERE / "contract_prices_2025.csv", "w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["Item No", "Description", "Contract Price"])
        for r in _rows("prices_2025.csv"):
            out.writerow(
                [r["item_code"], f"Cath lab item {r['item_code']}", _dollars(r["unit_cost"])]
            )


def quality_registry_cases() -> None:
    """Example D's case file as a quality registry extract: a title row, its own headers,
    M/D/YYYY discharge dates, Y/N flags."""
    header = ["Encounter ID", "Patient Age", "Procedure", "Admission Type", "Discharge Date",
              "Comfort Care Only", "Anticoagulated on Admission", "Prophylaxis by POD1",
              "Medical Reason No Prophylaxis"]  # fmt: skip
    with open(EXAMPLE_A.parent / "example_d" / "cases.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(HERE / "quality_registry_cases.csv", "w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["Quality registry extract - VTE prophylaxis - 2025"])
        out.writerow(header)
        for r in rows:
            out.writerow(
                [
                    r["case_id"],
                    r["age"],
                    r["procedure"],
                    r["admission_type"],
                    _us_date(r["discharge_date"], short=False),
                    _yn(r["comfort_care_only"]),
                    _yn(r["anticoagulated_on_admission"]),
                    _yn(r["prophylaxis_by_pod1"]),
                    r["medical_reason_no_prophylaxis"],
                ]
            )


if __name__ == "__main__":
    quality_registry_cases()
    or_supply_usage()
    cath_lab_workbook()
    contract_prices()
