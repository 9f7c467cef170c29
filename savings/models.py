"""Models of the savings app: opportunities identified at signing, imported data files (usage
and prices, versioned, with checksums), their rows, and stored calculations (spec section 4)."""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Q

from comanage.core.fields import cost_field, money_field
from comanage.core.master_imports import MappedImport, MasterImport
from comanage.core.tenancy import TenantModel, TenantOwned

from .read_models import SavingsResult


class OpportunityStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed (design phase)"
    AGREED = "agreed", "Agreed"


class SavingsOpportunity(TenantModel):
    """A named set of items for defined case types, with its own baseline (spec 4).

    Opportunities agreed before execution are "identified at signing" and earn from year 1.
    One added after execution is an amendment: it earns from ``effective_from_year`` (a later
    programme year) on. Once the agreement is executed, the signing-time opportunities are frozen.
    """

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="savings_opportunities"
    )
    key = models.CharField(max_length=20, help_text="Short code, e.g. A.")
    name = models.CharField(max_length=200)
    case_types = models.JSONField(default=list, help_text="Procedure codes or MS-DRGs.")
    item_codes = models.JSONField(default=list)
    floor_per_case = money_field(null=True, blank=True)
    savings_target = money_field()
    base_year = models.PositiveSmallIntegerField(help_text="Calendar year of the baseline data.")
    status = models.CharField(
        max_length=10, choices=OpportunityStatus.choices, default=OpportunityStatus.AGREED
    )
    identified_at_signing = models.BooleanField(default=True)
    effective_from_year = models.ForeignKey(
        "agreements.ProgrammeYear",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Amendments only: the first programme year it earns in.",
    )
    finding = models.TextField(blank=True, help_text="The analysis finding it came from.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agreement", "key"]
        verbose_name_plural = "savings opportunities"
        constraints = [
            models.UniqueConstraint(fields=["agreement", "key"], name="opportunity_key_unique"),
            models.CheckConstraint(
                condition=Q(savings_target__gte=0), name="opportunity_target_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(floor_per_case__isnull=True) | Q(floor_per_case__gte=0),
                name="opportunity_floor_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.name}"

    def physician_ids(self) -> set[int]:
        return self.agreement.physician_ids()


class ImportKind(models.TextChoices):
    USAGE = "usage", "Case-level usage"
    PRICES = "prices", "Price file"


class ImportPeriod(models.TextChoices):
    BASE = "base", "Base year"
    PROGRAMME = "programme", "Programme year"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Awaiting confirmation"
    QUEUED = "queued", "Queued"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


def _import_path(instance: DataImport, filename: str) -> str:
    # Under MEDIA_ROOT, which has no public URL (MEDIA_URL is None): served only via a view.
    return (
        f"org-{instance.organization_id}/savings/{instance.agreement_id}/"
        f"{instance.sha256[:16]}-{filename}"
    )


class DataImport(TenantModel, MappedImport):
    """One uploaded file (usage or prices) for one period of one agreement.

    The original file is kept with its SHA-256; a later import for the same period supersedes
    this one (``is_current`` moves), and this one stays for the audit. Calculations record which
    imports they used.
    """

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="savings_imports"
    )
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    period = models.CharField(max_length=10, choices=ImportPeriod.choices)
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="savings_imports",
    )
    base_year = models.PositiveSmallIntegerField(null=True, blank=True)
    period_start = models.DateField()
    period_end = models.DateField()
    file = models.FileField(upload_to=_import_path, max_length=300)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField(default=0)
    file_format = models.CharField(max_length=5, default="csv")
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    version = models.PositiveIntegerField(default=0, help_text="Set when applied.")
    is_current = models.BooleanField(default=False)
    row_count = models.PositiveIntegerField(default=0)
    case_count = models.PositiveIntegerField(default=0)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    workbook_head = models.JSONField(
        default=dict,
        blank=True,
        help_text="An Excel workbook's sheets and first rows, read by the worker for the "
        "mapping step (the web request never opens a workbook).",
    )

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "kind", "period", "programme_year", "base_year"],
                condition=Q(is_current=True),
                name="one_current_import_per_period",
            ),
            models.CheckConstraint(
                condition=(
                    Q(period="base", base_year__isnull=False, programme_year__isnull=True)
                    | Q(period="programme", programme_year__isnull=False, base_year__isnull=True)
                ),
                name="import_period_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.period_label} · {self.original_name}"

    @property
    def period_label(self) -> str:
        if self.period == ImportPeriod.BASE:
            return f"Base year {self.base_year}"
        return self.programme_year.label if self.programme_year else "—"

    @property
    def mapping_label(self) -> str:
        """Which mapping read the file, in words ("" for the canonical layout)."""
        used = self.mapping_used or {}
        if used.get("name"):
            return f"{used['name']}, version {used.get('version', 1)}"
        if used.get("columns"):
            return "a mapping made for this file"
        return ""


class UsageRow(TenantOwned):
    """One item used in one case. Millions of rows: scoped, no per-row history (the import is
    audited), no organization index (every query goes through ``data_import``).

    No database-level foreign keys: Django's are deferred constraint triggers, checked one row
    at a time at commit, which made committing a 1,000,000-row import take longer than loading
    it. The rows are written only by the importer (:class:`savings.importing.UsageLoader`),
    which takes both ids from the ``DataImport`` it holds locked in the same transaction, and
    removed only through the ORM (which still cascades from ``DataImport`` and protects
    ``Organization`` in Python), so the constraints checked nothing the code does not already
    guarantee. Same reasoning as the indicators' case-membership table.

    Every query reads one import's rows (``WHERE data_import_id = ...``). On PostgreSQL the
    table is partitioned by import (migration 0003): an import's rows are COPYed into a staging
    table that becomes its partition, and a query reads that partition alone. SQLite keeps one
    table with a B-tree on ``data_import_id`` (migration 0002), hence ``db_index=False`` here.
    """

    organization = models.ForeignKey(
        "core.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    data_import = models.ForeignKey(
        DataImport, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    case_id = models.CharField(max_length=64)
    service_date = models.DateField()
    case_type = models.CharField(max_length=32)
    physician_npi = models.CharField(max_length=10)
    payer = models.CharField(max_length=64, blank=True)
    federal_program = models.BooleanField()
    item_code = models.CharField(max_length=50)
    quantity = cost_field()
    unit_cost = cost_field()
    severity_weight = models.DecimalField(max_digits=10, decimal_places=4)
    notice_date = models.DateField(null=True, blank=True)
    reviewed = models.BooleanField(null=True, blank=True)
    opted_out = models.BooleanField(default=False)

    class Meta:
        ordering = ["data_import", "id"]


class PriceItem(TenantOwned):
    organization = models.ForeignKey(
        "core.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    data_import = models.ForeignKey(DataImport, on_delete=models.CASCADE, related_name="+")
    item_code = models.CharField(max_length=50)
    unit_cost = cost_field()

    class Meta:
        ordering = ["data_import", "item_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_import", "item_code"], name="price_item_unique_per_file"
            )
        ]


class CalculationKind(models.TextChoices):
    YEAR = "year", "Programme year"
    PROJECTION = "projection", "Projection (year to date)"
    SCENARIO = "scenario", "What-if scenario"


class SavingsCalculation(TenantModel):
    """A stored run of the engine: its inputs (with file checksums) and every figure.

    Reproducible: the same inputs give the same ``result_checksum``; a rerun with identical
    inputs returns the stored run instead of adding a duplicate."""

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.CASCADE, related_name="savings_calculations"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.CASCADE, related_name="savings_calculations"
    )
    kind = models.CharField(
        max_length=12, choices=CalculationKind.choices, default=CalculationKind.YEAR
    )
    as_of = models.DateField(null=True, blank=True, help_text="Projections: data through.")
    overrides = models.JSONField(default=dict, blank=True)
    inputs = models.JSONField(default=dict)
    inputs_checksum = models.CharField(max_length=64)
    result = models.JSONField(default=dict)
    result_checksum = models.CharField(max_length=64)
    gross_savings = money_field()
    physician_pool = money_field()
    amount_paid = money_field()
    projected_gross_savings = money_field(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(
                fields=["programme_year", "kind", "inputs_checksum"],
                name="calculation_unique_per_inputs",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.programme_year} · {self.result_checksum[:12]}"

    def physician_ids(self) -> set[int]:
        return self.agreement.physician_ids()

    @cached_property
    def read(self) -> SavingsResult:
        """The stored ``result`` as typed figures (``savings/read_models.py``)."""
        return SavingsResult.from_stored(self.result)


class Item(TenantModel):
    """One line of the hospital's item master: what an item code in the usage files is.

    Opportunities name their items by code (``SavingsOpportunity.item_codes``, which the engine
    reads); the master lets an administrator find items by text, manufacturer and category and
    add their codes to an opportunity, many at once."""

    code = models.CharField("item code", max_length=50)
    description = models.CharField(max_length=300)
    manufacturer = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=100, blank=True)
    unit_of_measure = models.CharField(max_length=30, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"], name="item_code_unique_per_org"
            )
        ]
        indexes = [models.Index(fields=["organization", "manufacturer", "category"])]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class ItemImport(MasterImport):
    """One uploaded item master file: creates and updates items by code (whole or not at all)."""

    class Meta(MasterImport.Meta):
        verbose_name = "item master import"
