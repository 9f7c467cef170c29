"""Adjudication: calculation runs (frozen figures), reports and their lifecycle, statements and
payment lines (spec section 5).

"Freeze, then render": a run's figures are written once and never edited; a report's PDF is
rendered from those stored figures; from ``approved_by_counsel`` on a report is immutable and a
correction is a new version that supersedes it.
"""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Q

from comanage.core.fields import money_field
from comanage.core.tenancy import TenantModel

from .read_models import RunRead


class FrozenRecord(Exception):
    """Raised when something tries to change a record that is frozen."""


class CalculationRun(TenantModel):
    """One version of a programme year's adjudication calculation. Written once, never edited.

    ``inputs``, ``figures`` (every engine's ``to_dict()``), ``flags`` and ``results`` (the
    totals) are stored as canonical JSON; ``calculation_hash`` is the SHA-256 of inputs + rules
    version + results, so the same inputs always give the same hash and a rerun on unchanged
    data reuses the version whose hash matches.
    """

    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.PROTECT, related_name="calculation_runs"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.PROTECT, related_name="calculation_runs"
    )
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    rules_version = models.CharField(max_length=40)
    inputs = models.JSONField()
    figures = models.JSONField()
    flags = models.JSONField(default=list)
    results = models.JSONField()
    calculation_hash = models.CharField(max_length=64)
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    diff = models.JSONField(
        default=list, blank=True, help_text="Figure-by-figure changes against the previous version."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["programme_year", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme_year", "version"], name="calculation_run_version_unique"
            ),
            models.UniqueConstraint(
                fields=["programme_year", "calculation_hash"], name="calculation_run_hash_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agreement} · {self.programme_year.label} · v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise FrozenRecord("A calculation run is never edited; run a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise FrozenRecord("A calculation run is never deleted.")

    def physician_ids(self) -> set[int]:
        return set(self.distributions.values_list("physician_id", flat=True))

    @cached_property
    def read(self) -> RunRead:
        """The stored totals, figures, flags and diff as typed figures
        (``adjudication/read_models.py``)."""
        return RunRead.from_run(self)


class DistributionComponent(models.TextChoices):
    INCENTIVE = "incentive", "Incentive (P4P) bonus"
    FIXED_FEE = "fixed_fee", "Fixed management fee"
    SAVINGS = "savings", "Shared-savings distribution"


class Distribution(TenantModel):
    """One physician's share of one component of a run (statements and payments read these)."""

    run = models.ForeignKey(CalculationRun, on_delete=models.PROTECT, related_name="distributions")
    physician = models.ForeignKey(
        "agreements.Physician", on_delete=models.PROTECT, related_name="adjudication_distributions"
    )
    component = models.CharField(max_length=20, choices=DistributionComponent.choices)
    entitlement = models.CharField(max_length=30, blank=True)
    weight = models.DecimalField(max_digits=20, decimal_places=10)
    amount = money_field()
    note = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "physician", "component"], name="distribution_unique_per_component"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.physician}: {self.amount} ({self.component})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise FrozenRecord("Distribution rows belong to a run and are never edited.")
        super().save(*args, **kwargs)


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    SUBMITTED = "submitted_to_counsel", "Submitted to counsel"
    APPROVED = "approved_by_counsel", "Approved by counsel"
    RETURNED = "returned", "Returned"
    AUTHORISED = "payment_authorised", "Payment authorised"
    PAID = "paid", "Paid"
    SUPERSEDED = "superseded", "Superseded"


FROZEN_STATUSES = (ReportStatus.APPROVED, ReportStatus.AUTHORISED, ReportStatus.PAID)


class AdjudicationReport(TenantModel):
    """The report on one run version and its lifecycle. Frozen from approval on."""

    run = models.OneToOneField(CalculationRun, on_delete=models.PROTECT, related_name="report")
    agreement = models.ForeignKey(
        "agreements.Agreement", on_delete=models.PROTECT, related_name="adjudication_reports"
    )
    programme_year = models.ForeignKey(
        "agreements.ProgrammeYear", on_delete=models.PROTECT, related_name="adjudication_reports"
    )
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=25, choices=ReportStatus.choices, default=ReportStatus.DRAFT
    )
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    calculation_hash = models.CharField(max_length=64)
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    compliance_snapshot = models.JSONField(
        default=list,
        blank=True,
        help_text="The year's compliance flags and their resolution, frozen with the report.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme_year", "version"], name="adjudication_report_version_unique"
            ),
            # At most one report per programme year still being prepared or reviewed.
            models.UniqueConstraint(
                fields=["programme_year"],
                condition=Q(status__in=["draft", "in_review", "submitted_to_counsel", "returned"]),
                name="one_open_report_per_programme_year",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Adjudication report · {self.agreement} · {self.programme_year.label} · "
            f"v{self.version}"
        )

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN_STATUSES

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored in FROZEN_STATUSES:
                raise FrozenRecord(
                    "This report was approved by counsel and is frozen; a "
                    "correction is a new version."
                )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise FrozenRecord("Adjudication reports are never deleted.")

    def physician_ids(self) -> set[int]:
        return self.run.physician_ids()


class ReportTransition(TenantModel):
    """Who moved a report from one state to the next, when, and why."""

    report = models.ForeignKey(
        AdjudicationReport, on_delete=models.PROTECT, related_name="transitions"
    )
    from_status = models.CharField(max_length=25, choices=ReportStatus.choices)
    to_status = models.CharField(max_length=25, choices=ReportStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=200)
    actor_role = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField()
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["report", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status} by {self.actor_name}"


class PhysicianStatement(TenantModel):
    """One physician's statement for a report version, rendered from the stored figures."""

    report = models.ForeignKey(
        AdjudicationReport, on_delete=models.PROTECT, related_name="statements"
    )
    physician = models.ForeignKey(
        "agreements.Physician", on_delete=models.PROTECT, related_name="adjudication_statements"
    )
    total = money_field()
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["report", "physician__last_name", "physician__first_name", "physician_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "physician"], name="statement_unique_per_report"
            ),
        ]

    def __str__(self) -> str:
        return f"Statement · {self.physician} · {self.report.programme_year.label}"


class PaymentKind(models.TextChoices):
    FIXED_FEE = "fixed_fee", "Fixed-fee instalment"
    INCENTIVE = "incentive", "Incentive bonus"
    DISTRIBUTION = "distribution", "Per-physician distribution"


class PaymentLine(TenantModel):
    """One amount to pay after authorisation; recorded once, never twice."""

    report = models.ForeignKey(
        AdjudicationReport, on_delete=models.PROTECT, related_name="payment_lines"
    )
    line_key = models.CharField(max_length=60)
    kind = models.CharField(max_length=20, choices=PaymentKind.choices)
    position = models.PositiveIntegerField(default=0)
    payee = models.CharField(max_length=200)
    physician = models.ForeignKey(
        "agreements.Physician", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=300)
    amount = money_field()
    paid_amount = money_field(null=True, blank=True)
    paid_on = models.DateField(null=True, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["report", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "line_key"], name="payment_line_unique_per_report"
            ),
            models.CheckConstraint(
                condition=(Q(paid_on__isnull=True) & Q(paid_amount__isnull=True))
                | (Q(paid_on__isnull=False) & Q(paid_amount__isnull=False)),
                name="payment_line_paid_amount_and_date_together",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"

    @property
    def is_paid(self) -> bool:
        return self.paid_on is not None
