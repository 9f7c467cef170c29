"""The item master (issue 17, item 4): import whole or not at all, and the page that assigns
many items to a savings opportunity by search and filter."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from comanage.core.master_imports import ImportRefused, MasterImportStatus
from comanage.core.models import BusinessEvent, Job
from savings import services
from savings.models import Item, ItemImport, SavingsOpportunity
from tests.savings.helpers import example_a_agreement, import_example_a, year

DATA = Path(__file__).resolve().parents[1] / "data"
ITEM_FILE = DATA / "item_master_riverside.csv"
ITEMS = "/o/riverside/savings/items/"

pytestmark = pytest.mark.django_db


def _receive(world, content: bytes, name: str = "items.csv") -> ItemImport:
    with world.scope():
        return services.item_import_receive(
            organization=world.org,
            upload=SimpleUploadedFile(name, content, content_type="text/csv"),
            user=world.users["administrator"],
        )


def _apply(world, content: bytes) -> dict:
    item_import = _receive(world, content)
    with world.scope():
        return services.item_import_apply(
            item_import=item_import, user=world.users["administrator"]
        )


@pytest.fixture
def master(world):
    _apply(world, ITEM_FILE.read_bytes())


@pytest.fixture
def agreement(world):
    return example_a_agreement(world)


def _opportunity(world, agreement, key: str) -> SavingsOpportunity:
    with world.scope():
        return SavingsOpportunity.objects.get(agreement=agreement, key=key)


def test_the_item_master_file_imports_with_history(world, django_capture_on_commit_callbacks):
    item_import = _receive(world, ITEM_FILE.read_bytes())
    with world.scope():
        preview = services.item_import_preview(item_import=item_import)
        assert preview["row_count"] == 10 and preview["problem_count"] == 0
        assert [f["label"] for f in preview["mapping"]] == [
            "item code",
            "description",
            "manufacturer",
            "category",
            "unit of measure",
        ]
        with django_capture_on_commit_callbacks(execute=True):
            job = services.item_import_start(
                item_import=item_import, user=world.users["administrator"]
            )
        job.refresh_from_db()
        item_import.refresh_from_db()
        assert job.status == "succeeded", job.message
        assert item_import.status == MasterImportStatus.APPLIED
        assert item_import.summary == {
            "items_created": 10,
            "items_updated": 0,
            "items_unchanged": 0,
        }
        stem = Item.objects.get(code="IMP-47120")
        assert stem.description == "Cementless femoral stem, size 12, titanium"
        assert (stem.manufacturer, stem.category, stem.unit_of_measure) == (
            "Zimmer Biomet",
            "Orthopedic implants",
            "EA",
        )
        assert stem.history.get().history_user == world.users["administrator"]
        assert BusinessEvent.objects.filter(name="items.imported").count() == 1


def test_a_second_file_updates_the_changed_codes_and_keeps_the_others(world, master):
    content = (
        b"Item #,Item Description,Mfr,Category,UOM\n"
        b'IMP-47120,"Cementless femoral stem, size 12, Ti-6Al-4V",Zimmer Biomet,'
        b"Orthopedic implants,EA\n"
        b'SUP-10430,"Pulsed lavage system, disposable",Stryker,Surgical supplies,EA\n'
        b"NEW-1,Suture anchor 5.0 mm,Arthrex,Orthopedic implants,EA\n"
    )
    assert _apply(world, content) == {"items_created": 1, "items_updated": 1, "items_unchanged": 1}
    with world.scope():
        assert Item.objects.count() == 11
        stem = Item.objects.get(code="IMP-47120")
        assert stem.description.endswith("Ti-6Al-4V")
        assert stem.history.count() == 2


def test_a_bad_item_master_is_refused_whole(world, master):
    content = (
        "item_code,description,manufacturer\n"
        "IMP-47120,Changed description,Zimmer Biomet\n"
        "X-1,,Acme\n"
        "imp-47120,Twice,Acme\n"
        f"X-2,{'d' * 301},Acme\n"
    ).encode()
    item_import = _receive(world, content)
    with world.scope(), pytest.raises(ImportRefused) as refused:
        services.item_import_apply(item_import=item_import, user=None)
    assert refused.value.problems.as_list() == [
        {"row": 3, "column": "description", "message": "the description is empty"},
        {
            "row": 4,
            "column": "item_code",
            "message": "the item code imp-47120 is also on row 2; give it once",
        },
        {
            "row": 5,
            "column": "description",
            "message": "the description is longer than 300 characters",
        },
    ]
    with world.scope():
        assert Item.objects.get(code="IMP-47120").description.startswith("Cementless")
        assert not Item.objects.filter(code="X-1").exists()
    missing = _receive(world, b"code,manufacturer\nA,B\n")
    with world.scope():
        preview = services.item_import_preview(item_import=missing)
    assert preview["missing"] == ["description"]


def test_the_page_finds_items_by_text_manufacturer_and_category(world, master, agreement):
    client = world.client("administrator")
    text = client.get(ITEMS, {"manufacturer": "Stryker"}).content.decode()
    assert "3 items match." in text
    assert "IMP-52008" in text and "SUP-10430" in text and "IMP-47120" not in text
    text = client.get(ITEMS, {"q": "femoral", "category": "Orthopedic implants"}).content.decode()
    assert "3 items match." in text  # two stems and the knee femoral component
    text = client.get(ITEMS, {"q": "stem 13"}).content.decode()
    assert "1 item match." in text and "IMP-47121" in text


def test_many_items_are_assigned_in_one_action_and_shown(world, master, agreement):
    opportunity = _opportunity(world, agreement, "A")
    client = world.client("administrator")
    response = client.post(
        ITEMS,
        {
            "manufacturer": "Stryker",
            "action": "assign",
            "opportunity": opportunity.pk,
            "all_matching": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "3 items assigned to" in response.content.decode()
    opportunity.refresh_from_db()
    assert opportunity.item_codes == ["A1", "A2", "IMP-52008", "IMP-52009", "SUP-10430"]
    # chosen one by one with the checkboxes, one already there
    client.post(
        ITEMS,
        {
            "action": "assign",
            "opportunity": opportunity.pk,
            "items": ["IMP-52008", "BIO-30077"],
        },
    )
    opportunity.refresh_from_db()
    assert "BIO-30077" in opportunity.item_codes
    assigned = client.get(ITEMS, {"assigned": str(opportunity.pk)}).content.decode()
    assert "4 items match." in assigned
    assert "Closure devices" in assigned
    unassigned = client.get(ITEMS, {"assigned": "none"}).content.decode()
    assert "6 items match." in unassigned
    client.post(
        ITEMS,
        {"action": "unassign", "opportunity": opportunity.pk, "items": ["SUP-10430"]},
    )
    opportunity.refresh_from_db()
    assert "SUP-10430" not in opportunity.item_codes
    with world.scope():
        assert BusinessEvent.objects.filter(name="savings.items_assigned").count() == 2
        assert BusinessEvent.objects.filter(name="savings.items_unassigned").count() == 1


def test_refusals_are_clear_and_change_nothing(world, master, agreement):
    opportunity = _opportunity(world, agreement, "A")
    client = world.client("administrator")
    nothing = client.post(ITEMS, {"action": "assign", "opportunity": opportunity.pk})
    assert nothing.status_code == 400
    assert "Select at least one item" in nothing.content.decode()
    unknown = client.post(
        ITEMS, {"action": "assign", "opportunity": opportunity.pk, "items": ["NOPE-1"]}
    )
    assert unknown.status_code == 400
    assert "Not in the item master: NOPE-1." in unknown.content.decode()
    no_opportunity = client.post(ITEMS, {"action": "assign", "opportunity": "999999"})
    assert no_opportunity.status_code == 400
    last = client.post(
        ITEMS, {"action": "unassign", "opportunity": opportunity.pk, "items": ["A1", "A2"]}
    )
    assert last.status_code == 400
    assert "keeps at least one item" in last.content.decode()
    opportunity.refresh_from_db()
    assert opportunity.item_codes == ["A1", "A2"]


def test_an_executed_agreements_opportunity_is_frozen(world, master):
    agreement = example_a_agreement(world, status="active")
    with world.scope():
        type(agreement).objects.filter(pk=agreement.pk).update(executed_on="2024-12-15")
    opportunity = _opportunity(world, agreement, "A")
    response = world.client("administrator").post(
        ITEMS, {"action": "assign", "opportunity": opportunity.pk, "items": ["IMP-52008"]}
    )
    assert response.status_code == 400
    assert "this opportunity is frozen" in response.content.decode()
    opportunity.refresh_from_db()
    assert opportunity.item_codes == ["A1", "A2"]


def test_assigned_items_give_the_engine_the_same_figures(world, agreement):
    """Example A with opportunity C's second item assigned from the master: to the cent."""
    c = _opportunity(world, agreement, "C")
    with world.scope():
        services.opportunity_update(
            opportunity=c, data={"item_codes": ["C1"]}, user=world.users["administrator"]
        )
    _apply(world, b"item_code,description\nC1,Balloon 2.5 mm\nC2,Balloon 3.0 mm\n")
    response = world.client("administrator").post(
        ITEMS, {"action": "assign", "opportunity": c.pk, "items": ["C2"]}
    )
    assert response.status_code == 302
    import_example_a(world, agreement)
    with world.scope():
        result = services.savings_for_year(programme_year=year(agreement, 1)).result
    assert [o.capped_savings for o in result.opportunities] == [
        Decimal("91856.01"),
        Decimal("60000.00"),
        Decimal("-4080.00"),
    ]
    assert result.gross_savings == Decimal("147776.01")


@pytest.mark.parametrize("role", ["executive", "counsel", "ceo", "auditor"])
def test_readers_see_the_items_but_cannot_assign_or_import(world, master, agreement, role):
    opportunity = _opportunity(world, agreement, "A")
    client = world.client(role)
    page = client.get(ITEMS)
    assert page.status_code == 200
    assert "Apply to the selected items" not in page.content.decode()
    assert (
        client.post(
            ITEMS, {"action": "assign", "opportunity": opportunity.pk, "items": ["IMP-52008"]}
        ).status_code
        == 403
    )
    assert client.get(ITEMS + "imports/").status_code == 403
    opportunity.refresh_from_db()
    assert opportunity.item_codes == ["A1", "A2"]


def test_a_physician_sees_no_item_master(world, master):
    client = world.client("physician")
    assert client.get(ITEMS).status_code == 403
    assert client.get(ITEMS + "imports/").status_code == 403


def test_another_organization_gets_404(world, master, agreement):
    opportunity = _opportunity(world, agreement, "A")
    item_import = _receive(world, ITEM_FILE.read_bytes())
    client = world.client("outsider")
    assert client.get(ITEMS).status_code == 404
    assert (
        client.post(
            ITEMS, {"action": "assign", "opportunity": opportunity.pk, "items": ["IMP-52008"]}
        ).status_code
        == 404
    )
    assert client.get(f"{ITEMS}imports/{item_import.pk}/").status_code == 404
    assert client.post(f"{ITEMS}imports/{item_import.pk}/confirm/").status_code == 404
    with world.scope():
        assert not Job.objects.exists()
    opportunity.refresh_from_db()
    assert opportunity.item_codes == ["A1", "A2"]


def test_the_administrator_imports_on_the_pages(world, django_capture_on_commit_callbacks):
    client = world.client("administrator")
    response = client.post(
        ITEMS + "imports/",
        {"file": SimpleUploadedFile("m.csv", ITEM_FILE.read_bytes(), content_type="text/csv")},
    )
    assert response.status_code == 302
    detail = client.get(response["Location"]).content.decode()
    assert "Confirm and import" in detail and "IMP-47120" in detail
    with world.scope():
        item_import = ItemImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{ITEMS}imports/{item_import.pk}/confirm/")
    done = client.get(f"{ITEMS}imports/{item_import.pk}/").content.decode()
    assert "Items created" in done
    with world.scope():
        assert Item.objects.count() == 10
