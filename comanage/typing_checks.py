"""What mypy must see, checked by mypy itself (``scripts/mypy_gate.py`` runs it over this
package): a typed field helper reads as a ``Decimal`` (``Decimal | None`` with ``null=True``),
and a tenant model's ``objects`` returns that model. Nothing here runs: a regression is a mypy
error in this module, which the gate's baseline does not allow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal
    from typing import assert_type

    from adjudication.models import PaymentLine
    from agreements.models import AgreementTerms, FMVOpinion, TimeEntry
    from comanage.core.tenancy import TenantManager
    from indicators.models import IndicatorDefinition
    from savings.models import UsageRow

    def _field_types(
        terms: AgreementTerms,
        opinion: FMVOpinion,
        entry: TimeEntry,
        definition: IndicatorDefinition,
        row: UsageRow,
        line: PaymentLine,
    ) -> None:
        assert_type(terms.admin_fee_monthly, Decimal)
        assert_type(terms.annual_fixed_fee, Decimal | None)
        assert_type(terms.physician_share_pct, Decimal)
        assert_type(opinion.total_max_annual, Decimal)
        assert_type(opinion.fixed_hours, Decimal | None)
        assert_type(entry.hours, Decimal)
        assert_type(definition.baseline_value, Decimal | None)
        assert_type(row.unit_cost, Decimal)
        assert_type(line.paid_amount, Decimal | None)

    def _tenant_manager_types() -> None:
        assert_type(AgreementTerms.objects, TenantManager[AgreementTerms])
        assert_type(AgreementTerms.objects.get(pk=1), AgreementTerms)
        assert_type(TimeEntry.objects.filter(pk=1).first(), TimeEntry | None)
