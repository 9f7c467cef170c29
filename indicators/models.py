"""Indicators of an agreement (spec sections 2 and 3): versioned definitions, results per
measurement period (aggregate or computed from a case file), each case's population membership,
benchmarks and action plans, plus a global library of reusable indicator templates."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from comanage.core.fields import measure_field, percent_field
from comanage.core.master_imports import MappedImport, MasterImport
from comanage.core.tenancy import TenantManager, TenantModel


class Kind(models.TextChoices):
    PROPORTION = "proportion", "Proportion"
    RATIO = "ratio", "Ratio"
    CONTINUOUS_VARIABLE = "continuous_variable", "Continuous variable"


class Direction(models.TextChoices):
    HIGHER_IS_BETTER = "higher_is_better", "Higher is better"
    LOWER_IS_BETTER = "lower_is_better", "Lower is better"


class Aggregate(models.TextChoices):
    MEDIAN = "median", "Median"
    MEAN = "mean", "Mean"


class MeasureFields(models.Model):
    """What a template and a definition share: how the indicator is measured and paid."""

    key = models.SlugField(max_length=50, help_text="Short code, unique within the agreement.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PROPORTION)
    unit = models.CharField(max_length=30, default="%")
    direction = models.CharField(max_length=20, choices=Direction.choices)
    populations = models.JSONField(
        default=dict,
        blank=True,
        help_text="Criteria tree per population (initial_population, denominator, ...).",
    )
    fields = models.JSONField(
        default=dict,
        blank=True,
        help_text="Columns of the case file this indicator reads, name -> type "
        "(string, number, boolean, date).",
    )
    date_field = models.CharField(
        max_length=64,
        blank=True,
        help_text="The case date that must fall inside the measurement period.",
    )
    numerator_definition = models.TextField(blank=True)
    denominator_definition = models.TextField(blank=True)
    observation_field = models.CharField(
        max_length=64, blank=True, help_text="Continuous variable: the value per case."
    )
    aggregate = models.CharField(max_length=10, choices=Aggregate.choices, default=Aggregate.MEDIAN)
    multiplier = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("1"),
        help_text="Ratio: e.g. 1000 for 'per 1,000 line days'.",
    )
    minimum_denominator = models.PositiveIntegerField(null=True, blank=True)
    threshold = measure_field()
    target = measure_field()
    stretch = measure_field()
    threshold_payout = percent_field(
        default=Decimal("50"), validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    target_payout = percent_field(
        default=Decimal("75"), validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    stretch_payout = percent_field(
        default=Decimal("100"), validators=[MinValueValidator(0), MaxValueValidator(100)]
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class IndicatorTemplate(MeasureFields):
    """A reusable indicator in the global library; holds no tenant data."""

    source = models.CharField(
        max_length=200, blank=True, help_text="Where the measure comes from (NQF, CMS, registry)."
    )
    suggested_weight = percent_field(default=Decimal("20"))
    is_key_quality_indicator = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["key"], name="indicator_template_key")]


class IndicatorDefinition(MeasureFields, TenantModel):
    """One indicator of one terms version of an agreement (amendments version them)."""

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="indicator_definitions"
    )
    terms = models.ForeignKey(
        "agreements.AgreementTerms", on_delete=models.CASCADE, related_name="indicator_definitions"
    )
    template = models.ForeignKey(
        IndicatorTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    position = models.PositiveSmallIntegerField(default=0)
    weight = percent_field(validators=[MinValueValidator(0), MaxValueValidator(100)])
    baseline_value = measure_field(null=True, blank=True)
    baseline_period = models.CharField(
        max_length=60, blank=True, help_text="e.g. 'CY2023' or '2023-07 to 2024-06'."
    )
    is_key_quality_indicator = models.BooleanField(
        default=False, help_text="Used by the shared-savings quality safeguard."
    )
    tolerance_pct = percent_field(
        null=True,
        blank=True,
        help_text="How far worse than baseline still counts as met (empty: the agreement's).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["terms", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["terms", "key"], name="indicator_key_unique_per_terms"),
        ]


class PeriodKind(models.TextChoices):
    ANNUAL = "annual", "Annual"
    QUARTER = "quarter", "Quarterly (interim)"


class ResultSource(models.TextChoices):
    AGGREGATE = "aggregate", "Aggregate entry"
    CASE_FILE = "case_file", "Computed from a case file"


class IndicatorResult(TenantModel):
    """A measured result of one indicator for one period. Never edited: a correction or a new
    import is a new version, recording what changed; only the current version counts."""

    definition = models.ForeignKey(
        IndicatorDefinition, on_delete=models.CASCADE, related_name="results"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.CASCADE, related_name="indicator_results"
    )
    period_kind = models.CharField(
        max_length=10, choices=PeriodKind.choices, default=PeriodKind.ANNUAL
    )
    period_start = models.DateField()
    period_end = models.DateField()
    period_label = models.CharField(max_length=30)
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    source = models.CharField(max_length=12, choices=ResultSource.choices)
    source_note = models.CharField(
        max_length=300, blank=True, help_text="Where the figures come from."
    )
    numerator = measure_field(null=True, blank=True)
    denominator = measure_field(null=True, blank=True)
    case_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="The n compared with the minimum."
    )
    value = models.DecimalField(
        max_digits=24,
        decimal_places=12,
        null=True,
        blank=True,
        help_text="Unrounded score; empty when there is no score.",
    )
    counts = models.JSONField(default=dict, blank=True)
    case_import = models.ForeignKey(
        "CaseImport", null=True, blank=True, on_delete=models.PROTECT, related_name="results"
    )
    indicator_index = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Position of this indicator in the import's codes."
    )
    result_import = models.ForeignKey(
        "ResultImport",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="results",
        help_text="The results file that wrote this version (none: entered, or a case file).",
    )
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changes = models.JSONField(
        default=dict, blank=True, help_text="Field -> [previous, new] against the prior version."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["definition", "period_start", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "period_start", "period_end", "version"],
                name="indicator_result_version_unique",
            ),
            models.UniqueConstraint(
                fields=["definition", "period_start", "period_end"],
                condition=Q(is_current=True),
                name="indicator_result_one_current",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="indicator_result_period_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition.name} · {self.period_label} v{self.version}"

    @property
    def display_value(self) -> Decimal | None:
        from comanage.core.money import round_money

        return None if self.value is None else round_money(self.value)

    def physician_ids(self) -> set[int]:
        return self.definition.agreement.physician_ids()


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting to run"
    APPLIED = "applied", "Applied"
    REFUSED = "refused", "Refused"


class CaseImport(TenantModel, MappedImport):
    """An uploaded case file (one row per encounter) for one agreement and period."""

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="case_imports"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.CASCADE, related_name="case_imports"
    )
    period_kind = models.CharField(
        max_length=10, choices=PeriodKind.choices, default=PeriodKind.ANNUAL
    )
    period_start = models.DateField()
    period_end = models.DateField()
    period_label = models.CharField(max_length=30)
    file = models.FileField(upload_to="indicator-imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    row_count = models.PositiveIntegerField(default=0)
    indicator_keys = models.JSONField(
        default=list, blank=True, help_text="Indicator keys in the order of the codes."
    )
    summary = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.period_label})"

    @property
    def mapping_label(self) -> str:
        """Which mapping read the file, in words ("" for the canonical layout)."""
        used = self.mapping_used or {}
        if used.get("name"):
            return f"{used['name']}, version {used.get('version', 1)}"
        return "a mapping made for this file" if used.get("columns") else ""


class CaseMembership(models.Model):
    """One case of one import and its membership of every population of every indicator.

    ``codes`` holds two hex digits per indicator (in ``CaseImport.indicator_keys`` order), each
    a byte of population flags (see ``indicators.membership``): compact enough for 1M cases ×
    10 indicators, loaded with COPY, and filterable in SQL with ``substr``. No history: rows
    are written once per import, in the import's own transaction, and never edited.

    Tenant-scoped like ``TenantOwned`` (same scoped manager), but its two foreign keys carry no
    database constraint: the only writer is ``memberships_store`` inside the transaction that
    owns the import, and PostgreSQL's per-row referential-integrity triggers cost ~30 s per
    million rows (measured in bench/indicators_bench.py). Deletes still cascade via the ORM.
    """

    organization = models.ForeignKey(
        "core.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
        db_constraint=False,
        db_index=False,
    )
    case_import = models.ForeignKey(
        CaseImport,
        on_delete=models.CASCADE,
        related_name="memberships",
        db_constraint=False,
        db_index=False,
    )
    row_number = models.PositiveIntegerField()
    case_id = models.CharField(max_length=64)
    codes = models.CharField(max_length=64)

    # The primary key is (import, row): the one index a COPY of a million rows has to maintain,
    # and the one the drill-down reads (an import's cases in file order). A surrogate id plus
    # indexes on the import and the organization cost three index insertions per row (store
    # 6.1 s -> see bench/indicators_bench.py).
    pk = models.CompositePrimaryKey("case_import_id", "row_number")

    objects = TenantManager()

    class Meta:
        ordering = ["case_import", "row_number"]

    def __str__(self) -> str:
        return f"{self.case_id} ({self.codes})"


class Benchmark(TenantModel):
    """A national or peer value for an indicator, shown beside its baseline and results."""

    definition = models.ForeignKey(
        IndicatorDefinition, on_delete=models.CASCADE, related_name="benchmarks"
    )
    source = models.CharField(max_length=200)
    period = models.CharField(max_length=60, blank=True)
    percentile = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    value = measure_field()
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["definition", "source", "percentile"]

    def __str__(self) -> str:
        pct = f" p{self.percentile}" if self.percentile else ""
        return f"{self.source}{pct}: {self.value}"


class ActionPlanStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    CLOSED = "closed", "Closed"


class ActionPlan(TenantModel):
    """What the practice will do about an indicator whose interim result is below target."""

    definition = models.ForeignKey(
        IndicatorDefinition, on_delete=models.CASCADE, related_name="action_plans"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.CASCADE, related_name="indicator_action_plans"
    )
    result = models.ForeignKey(
        IndicatorResult,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_plans",
        help_text="The interim result that prompted the plan.",
    )
    title = models.CharField(max_length=200)
    owner = models.CharField(max_length=200)
    due_date = models.DateField()
    status = models.CharField(
        max_length=12, choices=ActionPlanStatus.choices, default=ActionPlanStatus.OPEN
    )
    closed_on = models.DateField(null=True, blank=True)
    closing_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "due_date"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status != ActionPlanStatus.CLOSED


class ActionStep(TenantModel):
    plan = models.ForeignKey(ActionPlan, on_delete=models.CASCADE, related_name="steps")
    description = models.CharField(max_length=300)
    owner = models.CharField(max_length=200, blank=True)
    due_date = models.DateField()
    done_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "due_date", "id"]

    def __str__(self) -> str:
        return self.description


class ResultImport(MasterImport):
    """One uploaded file of aggregate indicator results (numerator and denominator, or value
    and case count, per indicator and period) for one agreement: each row is recorded through
    the aggregate-result service, the file whole or not at all."""

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="result_imports"
    )

    class Meta(MasterImport.Meta):
        verbose_name = "indicator results import"
