"""The item master pages: find items by text, manufacturer and category, assign many to a
savings opportunity in one action (or take them out), and import the master file."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from comanage.core.http import signed_in_user
from comanage.core.master_import_views import MasterImportPages
from comanage.core.views import org_view

from . import items, selectors, services
from .models import ItemImport, SavingsOpportunity

MAX_PER_ACTION = 5000
FILTERS = ("q", "manufacturer", "category", "assigned")


def _opportunity_label(opportunity: SavingsOpportunity) -> str:
    return f"{opportunity.agreement.name} · {opportunity.key} {opportunity.name}"


class ItemAssignForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("assign", "Assign to"), ("unassign", "Take out of")], initial="assign"
    )
    opportunity = forms.TypedChoiceField(label="Opportunity", coerce=int, choices=())
    all_matching = forms.BooleanField(required=False, label="Every item matching the filter")

    def __init__(self, *args: Any, opportunities: list[SavingsOpportunity], **kwargs: Any):
        super().__init__(*args, **kwargs)
        choice = self.fields["opportunity"]
        assert isinstance(choice, forms.TypedChoiceField)
        choice.choices = [("", "Choose an opportunity")] + [
            (o.pk, _opportunity_label(o)) for o in opportunities
        ]


def _filters(source: Any, opportunities: list[SavingsOpportunity]) -> dict[str, Any]:
    values = {name: str(source.get(name, "")).strip()[:200] for name in FILTERS}
    by_pk = {str(o.pk): o for o in opportunities}
    assigned = values["assigned"]
    search: dict[str, Any] = {
        "text": values["q"],
        "manufacturer": values["manufacturer"],
        "category": values["category"],
    }
    if assigned == "none":
        search["unassigned_in"] = opportunities
    elif assigned in by_pk:
        search["assigned_to"] = by_pk[assigned]
    return {"values": values, "search": search}


def _act(
    request: HttpRequest, form: ItemAssignForm, matching: Any, by_pk: dict[int, SavingsOpportunity]
) -> str | None:
    """Run the assignment; returns an error to show, or None."""
    data = form.cleaned_data
    opportunity = by_pk.get(data["opportunity"])
    if opportunity is None:
        return "Choose an opportunity."
    if data["all_matching"]:
        count = matching.count()
        if count > MAX_PER_ACTION:
            return (
                f"{count:,} items match the filter; narrow it to {MAX_PER_ACTION:,} or fewer "
                "for one action."
            )
        codes = list(matching.values_list("code", flat=True))
    else:
        # the ticked boxes' item codes: checked against the master by the service
        codes = [str(code)[:50] for code in request.POST.getlist("items")]
    if len(codes) > MAX_PER_ACTION:
        return f"Select {MAX_PER_ACTION:,} items or fewer for one action."
    if not codes:
        return "Select at least one item (or tick “Every item matching the filter”)."
    user = signed_in_user(request)
    try:
        if data["action"] == "assign":
            added = services.opportunity_items_assign(
                opportunity=opportunity, codes=codes, user=user
            )
            already = len(set(codes)) - len(added)
            note = f" ({already:,} already in it)" if already else ""
            messages.success(
                request,
                f"{len(added):,} item{'s' if len(added) != 1 else ''} assigned to "
                f"{_opportunity_label(opportunity)}{note}.",
            )
        else:
            removed = services.opportunity_items_unassign(
                opportunity=opportunity, codes=codes, user=user
            )
            messages.success(
                request,
                f"{len(removed):,} item{'s' if len(removed) != 1 else ''} taken out of "
                f"{_opportunity_label(opportunity)}.",
            )
    except ValidationError as error:
        return " ".join(error.messages)
    return None


@org_view("savings.analyse", post="savings.edit")
def item_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    opportunities = selectors.item_opportunities()
    by_pk = {o.pk: o for o in opportunities}
    source = request.POST if request.method == "POST" else request.GET
    filters = _filters(source, opportunities)
    matching = selectors.items_search(**filters["search"])
    form = ItemAssignForm(request.POST or None, opportunities=opportunities)
    status = 200
    if request.method == "POST":
        error = _act(request, form, matching, by_pk) if form.is_valid() else None
        if form.is_valid() and error is None:
            query = urlencode({k: v for k, v in filters["values"].items() if v})
            return redirect(
                reverse("savings_items", args=[org_slug]) + (f"?{query}" if query else "")
            )
        if error:
            form.add_error(None, error)
        status = 400
    page = Paginator(matching, 50).get_page(request.GET.get("page"))
    assigned_to: dict[str, list[SavingsOpportunity]] = {}
    for opportunity in opportunities:
        for code in opportunity.item_codes:
            assigned_to.setdefault(code, []).append(opportunity)
    rows = [(item, assigned_to.get(item.code, [])) for item in page]
    query = urlencode({k: v for k, v in filters["values"].items() if v})
    return render(
        request,
        "savings/items.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "filters": filters["values"],
            "facets": selectors.item_facets(),
            "opportunities": [(o.pk, _opportunity_label(o)) for o in opportunities],
            "matching_count": page.paginator.count,
            "query": query,
        },
        status=status,
    )


class ItemUploadForm(forms.Form):
    file = forms.FileField(
        label="Item master file",
        help_text="CSV (UTF-8) or Excel workbook (.xlsx); you choose the sheet and match the "
        "columns after the upload.",
    )


_IMPORT_PAGES = MasterImportPages(
    model=ItemImport,
    noun="Item master import",
    detail_template="savings/item_import_detail.html",
    detail_route="savings_item_import",
    preview=lambda record: services.item_import_preview(item_import=record),
    start=lambda record, user: services.item_import_start(item_import=record, user=user),
    discard_record=lambda record, user: services.item_import_discard(item_import=record, user=user),
    list_template="savings/item_imports.html",
    upload_form=ItemUploadForm,
    receive=services.item_import_receive,
    upload_kind="items",
    list_context={"docs": items.COLUMN_DOCS},
    show_error=lambda form, error: form.add_error("file", error.messages),
)

item_imports, item_import_detail, item_import_confirm, item_import_discard = _IMPORT_PAGES.views(
    "item_import"
)
