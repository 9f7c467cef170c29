"""Design phase: the opportunity analysis over a base year's usage."""

from __future__ import annotations

from agreements.models import (
    Agreement,
)

from .. import engine, selectors
from ..models import (
    ImportKind,
)


def opportunity_analysis_run(
    *,
    agreement: Agreement,
    base_year: int,
    case_types: list[str] | None = None,
    item_codes: list[str] | None = None,
) -> engine.OpportunityAnalysis:
    data_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.USAGE, base_year=base_year
    )
    if data_import is None:
        raise engine.SavingsInputError(f"base-year {base_year} usage has not been imported")
    return engine.opportunity_analysis(
        usage=selectors.usage_columns(data_import=data_import),
        case_types=case_types or None,
        item_codes=item_codes or None,
    )
