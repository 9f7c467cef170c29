"""Issue 17 audit, the shared mapping step (pure): a saved mapping read onto a header written
otherwise, the sheet a workbook's data is on, a huge cell's sample, a file separated by
semicolons or tabs."""

from __future__ import annotations

from comanage.core.tabular.mapping import ColumnMapping, Field, FieldSet
from comanage.core.tabular.step import SavedMapping, header_digest, mapping_step, sheet_to_read

FIELDS = FieldSet(
    (
        Field("item_code", "Item code", "text", True, ("item no",)),
        Field("unit_cost", "Unit cost", "amount", True, ("contract price",)),
    )
)
HEADER = ["Item No", "Description", "Contract Price"]
SAVED = SavedMapping(
    id=7,
    name="Contract prices",
    version=2,
    header_digest=header_digest(HEADER),
    mapping=ColumnMapping({"Item No": "item_code", "Contract Price": "unit_cost"}),
    header=tuple(HEADER),
)


def test_a_saved_mapping_is_read_onto_the_files_own_header_cells():
    mapping = SAVED.mapping.on_header(
        ["CONTRACT  PRICE", "item no", "Description"], header_row=3, sheet="Prices"
    )
    assert mapping.columns == {"CONTRACT  PRICE": "unit_cost", "item no": "item_code"}
    assert (mapping.header_row, mapping.sheet) == (3, "Prices")


def test_the_saved_mapping_is_chosen_for_its_columns_in_another_order_under_a_new_title_row():
    rows = [["Prices"], ["as of 1/1/2025"], ["contract price", "ITEM NO", "Description", "Vendor"]]
    rows.append(["$5.00", "A1", "x", "Acme"])
    step = mapping_step(rows, fields=FIELDS, saved=[SAVED])
    assert step["saved"] == {"id": 7, "name": "Contract prices", "version": 2}
    assert step["header_row"] == 3 and step["issues"] == []
    assert [c["field"] for c in step["columns"]] == ["unit_cost", "item_code", "", ""]


def test_the_data_sheet_is_found_behind_an_empty_or_notes_sheet():
    heads = {
        "Empty": [],
        "Notes": [["This export lists"], ["contract prices"]],
        "Prices": [HEADER, ["A1", "x", "$5.00"]],
    }
    assert sheet_to_read(heads, fields=FIELDS) == "Prices"
    assert sheet_to_read({"Only": []}, fields=FIELDS) == "Only"


def test_a_huge_cell_is_shown_cut_short_in_the_samples():
    step = mapping_step([HEADER, ["A1", "y" * 500_000, "$5.00"]], fields=FIELDS)
    sample = step["columns"][1]["samples"][0]
    assert len(sample) < 100 and sample.endswith("…")


def test_a_file_separated_by_semicolons_or_tabs_is_named_as_such():
    for separator, word in ((";", "semicolons"), ("\t", "tabs")):
        rows = [[separator.join(HEADER)], [separator.join(["A1", "x", "5"])]]
        message = mapping_step(rows, fields=FIELDS)["problems"][0]["message"]
        assert message.startswith("the header cannot be found")
        assert f"separated by {word}" in message
