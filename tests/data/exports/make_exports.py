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
* nppes_roster_extract.csv: the NPPES registry extract of tests/data/roster_nppes_riverside.csv
  under a title row and a blank line, as the download tool writes it.
* medical_staff_roster.csv: the same physicians from a medical-staff office: own headers
  ("Provider NPI", "Last", "First", "Group", "Appointed", "Resigned"), NPIs with dashes,
  M/D/YY dates, a title row.
* item_master_materials.xlsx: a materials system's item master, a notes sheet first, then
  "Item Master" with a title row and its own headers ("Item #", "Mfr", "UOM").
* indicator_results_2025.csv: example C's aggregate results in the canonical layout.
* quality_dashboard_results_2025.xlsx: the same results from a quality dashboard: a notes sheet,
  then "Results" with a title row, indicators by name, the period as Excel date cells (one
  a serial day number pasted as a value), "Met"/"Eligible"/"Rate"/"N"/"Comments".
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


def nppes_roster_extract() -> None:
    source = (HERE.parent / "roster_nppes_riverside.csv").read_text()
    title = '"NPPES Downloadable File - extract of 5 NPIs",,,\n"Generated 1/12/2026",,,\n\n'
    (HERE / "nppes_roster_extract.csv").write_text(title + source)


# NPI, last, first, practice, join, leave (the NPPES extract's physicians)
ROSTER = [
    ("1487864542", "Okafor", "Chidi", "Riverside Orthopaedic Partners", "1/1/25", ""),
    ("1952284101", "Lindqvist", "Margaret", "Riverside Orthopaedic Partners", "1/1/25", "6/30/26"),
    ("1063366482", "Patel", "Anjali", "Riverside Orthopaedic Partners", "3/1/25", ""),
    ("1326562802", "Nguyen", "Thanh", "", "", ""),
    ("1740232883", "O'Brien", "Kathleen", "Riverside Orthopaedic Partners", "7/15/25", ""),
]


def medical_staff_roster() -> None:
    with open(HERE / "medical_staff_roster.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Medical Staff Office - active appointments", "", "", "", "", "", ""])
        out.writerow(["Provider NPI", "Last", "First", "Group", "Dept", "Appointed", "Resigned"])
        for npi, last, first, group, join, leave in ROSTER:
            out.writerow([_npi(npi), last, first, group, "Orthopaedics", join, leave])


ITEMS = [
    ("IMP-47120", "Cemented femoral stem, size 4", "Stryker", "Orthopedic implants", "EA"),
    ("IMP-47121", "Cemented femoral stem, size 5", "Stryker", "Orthopedic implants", "EA"),
    ("SUP-00931", "Bone cement, 40 g", "Zimmer Biomet", "Supplies", "BX"),
]


def item_master_workbook() -> None:
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["Item master extract from the materials system; one row per item."])
    sheet = book.create_sheet("Item Master")
    sheet.append(["Materials Management - Item Master (active items)"])
    sheet.append(["Item #", "Item Description", "Mfr", "Category", "UOM", "Last PO"])
    for code, description, maker, category, unit in ITEMS:
        sheet.append([code, description, maker, category, unit, dt.date(2025, 11, 3)])
    book.save(HERE / "item_master_materials.xlsx")


# key, name, numerator, denominator, value, case count, note (example C's annual results)
RESULTS = [
    ("ssi_joint", "Surgical site infection after hip or knee replacement", "6", "500", "", "",
     "NHSN"),
    ("median_los", "Median length of stay, joint replacement", "", "", "1.9", "480", "abstract"),
    ("experience_top_box", "Patient experience top-box", "430", "500", "", "", "HCAHPS"),
    ("readmission_30d", "30-day all-cause readmission", "1", "18", "", "", "claims"),
    ("vte_prophylaxis", "VTE prophylaxis by post-operative day 1", "12", "13", "", "",
     "chart review"),
]  # fmt: skip


def indicator_results() -> None:
    with open(HERE / "indicator_results_2025.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["indicator", "programme_year", "period", "numerator", "denominator", "value",
             "case_count", "source_note"]
        )  # fmt: skip
        for key, _name, num, den, value, cases, note in RESULTS:
            out.writerow([key, "2025", "annual", num, den, value, cases, note])
        out.writerow(["ssi_joint", "2025", "Q1", "2", "130", "", "", "NHSN"])


def quality_dashboard_workbook() -> None:
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["Quality dashboard export. Rates are per 100 cases."])
    sheet = book.create_sheet("Results")
    sheet.append(["Orthopedic co-management - quality results, exported 1/15/2026"])
    sheet.append(
        ["Measure Name", "Reporting Period Start", "Reporting Period End", "Met", "Eligible",
         "Rate", "N", "Comments"]
    )  # fmt: skip
    rows = [(*r, dt.date(2025, 1, 1), dt.date(2025, 12, 31)) for r in RESULTS]
    rows.append(RESULTS[0][:2] + ("2", "130", "", "", "NHSN", dt.date(2025, 1, 1),
                                  dt.date(2025, 3, 31)))  # fmt: skip
    for number, (_key, name, num, den, value, cases, note, start, end) in enumerate(rows):
        # every third end date a serial day number pasted as a value, as exports often hold
        last = (end - dt.date(1899, 12, 30)).days if number % 3 == 2 else end
        sheet.append(
            [name, start, last, int(num) if num else None, int(den) if den else None,
             float(value) if value else None, int(cases) if cases else None, note]
        )  # fmt: skip
    book.save(HERE / "quality_dashboard_results_2025.xlsx")


if __name__ == "__main__":
    nppes_roster_extract()
    medical_staff_roster()
    item_master_workbook()
    indicator_results()
    quality_dashboard_workbook()
    quality_registry_cases()
    or_supply_usage()
    cath_lab_workbook()
    contract_prices()
