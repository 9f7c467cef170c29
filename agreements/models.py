"""The contracts: agreements and their versioned terms, programme years, practices, physicians,
participations, FMV opinions, management duties and time sheets, the programme committee,
compliance flags, documents and the implementation timeline (spec sections 1, 2 and 4)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from comanage.core.fields import hours_field, money_field, percent_field
from comanage.core.master_imports import MasterImport
from comanage.core.money import round_money
from comanage.core.tenancy import TenantModel

from .validators import validate_npi


class Practice(TenantModel):
    """The physician group: the counterparty that receives the physicians' share."""

    name = models.CharField(max_length=200)
    tax_id = models.CharField("tax ID", max_length=20, blank=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    address = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="practice_name_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Physician(TenantModel):
    npi = models.CharField("NPI", max_length=10, validators=[validate_npi])
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    specialty = models.CharField(max_length=100, blank=True)
    practice = models.ForeignKey(
        Practice, null=True, blank=True, on_delete=models.PROTECT, related_name="physicians"
    )
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "npi"], name="physician_npi_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"Dr {self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def physician_id(self) -> int:
        """So "own data only" checks treat a physician record as the physician's own."""
        return self.pk


class AgreementKind(models.TextChoices):
    CO_MANAGEMENT = "co_management", "Co-management"
    SHARED_SAVINGS = "shared_savings", "Shared savings"


class ServiceLine(models.TextChoices):
    CARDIOVASCULAR = "cardiovascular", "Cardiovascular"
    ONCOLOGY = "oncology", "Oncology"
    ORTHOPEDICS = "orthopedics", "Orthopedics"
    SURGICAL_SERVICES = "surgical_services", "Surgical services"
    CUSTOM = "custom", "Other (custom)"


class AgreementStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_NEGOTIATION = "in_negotiation", "In negotiation"
    EXECUTED = "executed", "Executed"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    TERMINATED = "terminated", "Terminated"


FROZEN_STATUSES = (
    AgreementStatus.EXECUTED,
    AgreementStatus.ACTIVE,
    AgreementStatus.EXPIRED,
    AgreementStatus.TERMINATED,
)


class Agreement(TenantModel):
    """A co-management or shared-savings agreement. Its money terms and policies live in
    versioned ``AgreementTerms``; from execution on, a change is an amendment (a new version
    effective from a future date)."""

    kind = models.CharField(max_length=20, choices=AgreementKind.choices)
    name = models.CharField(max_length=200)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="agreements")
    service_line = models.CharField(max_length=30, choices=ServiceLine.choices)
    service_line_custom = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=20, choices=AgreementStatus.choices, default=AgreementStatus.DRAFT
    )
    term_start = models.DateField()
    term_end = models.DateField()
    program_administrator = models.CharField(
        max_length=200, blank=True, help_text="The independent third party running the programme."
    )
    administrator_contact = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    executed_on = models.DateField(null=True, blank=True)
    signatories = models.TextField(blank=True, help_text="Who signed, one per line.")
    terminated_on = models.DateField(null=True, blank=True)
    termination_reason = models.TextField(blank=True)
    patient_notice_process = models.TextField(blank=True)
    quality_safeguards = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_end__gt=models.F("term_start")),
                name="agreement_term_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN_STATUSES

    @property
    def service_line_label(self) -> str:
        if self.service_line == ServiceLine.CUSTOM and self.service_line_custom:
            return self.service_line_custom
        return self.get_service_line_display()

    def physician_ids(self) -> set[int]:
        """Physicians taking part, so a physician may read the agreement they belong to."""
        return set(self.participations.values_list("physician_id", flat=True))


class HoursShortfallPolicy(models.TextChoices):
    HOLD = "hold", "Hold the month until made up"
    PRORATE = "prorate", "Prorate the instalment"
    IGNORE = "ignore", "Pay in full"


class TierMode(models.TextChoices):
    STEP = "step", "Step"
    LINEAR = "linear", "Linear interpolation"


class SmallDenominatorPolicy(models.TextChoices):
    REDISTRIBUTE = "redistribute", "Redistribute the weight"
    ZERO = "zero", "Pay zero"
    HOLD_HARMLESS = "hold_harmless", "Hold harmless (pay at target)"


class DistributionMethod(models.TextChoices):
    PER_CAPITA = "per_capita", "Per capita"
    BY_OWNERSHIP = "by_ownership", "By ownership"


class VolumeCapScope(models.TextChoices):
    ALL_PAYORS = "all_payors", "All payors"
    FEDERAL_ONLY = "federal_only", "Federal programme payers only"


class NegativeOpportunities(models.TextChoices):
    NET = "net", "Net against other opportunities"
    FLOOR_AT_ZERO = "floor_at_zero", "Floor each opportunity at zero"


class QualityGate(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", "All or nothing"
    SLIDING = "sliding", "Sliding (share of key indicators met)"


class LeaverPolicy(models.TextChoices):
    PRO_RATA = "pro_rata", "Pro rata to days participated"
    FORFEIT = "forfeit", "Forfeit"


class AgreementTerms(TenantModel):
    """One version of an agreement's terms. Version 1 is set before execution; every later
    version is an amendment effective from a future date. The calculation for a programme year
    uses the version in force on the year's first day."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="terms")
    version = models.PositiveIntegerField(default=1)
    effective_from = models.DateField()
    reason = models.TextField(blank=True, help_text="Why the amendment was made.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Co-management (spec section 2)
    annual_fixed_fee = money_field(null=True, blank=True)
    incentive_pool = money_field(
        null=True, blank=True, help_text="Fixed incentive pool per programme year."
    )
    hours_shortfall_policy = models.CharField(
        max_length=10, choices=HoursShortfallPolicy.choices, default=HoursShortfallPolicy.HOLD
    )
    tier_mode = models.CharField(max_length=10, choices=TierMode.choices, default=TierMode.STEP)
    small_denominator_policy = models.CharField(
        max_length=15,
        choices=SmallDenominatorPolicy.choices,
        default=SmallDenominatorPolicy.REDISTRIBUTE,
    )
    distribution_method = models.CharField(
        max_length=15, choices=DistributionMethod.choices, default=DistributionMethod.PER_CAPITA
    )

    # Shared savings (spec section 4)
    physician_share_pct = percent_field(
        default=Decimal("50"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
    )
    admin_fee_monthly = money_field(
        default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    volume_cap_scope = models.CharField(
        max_length=15, choices=VolumeCapScope.choices, default=VolumeCapScope.ALL_PAYORS
    )
    negative_opportunities = models.CharField(
        max_length=15, choices=NegativeOpportunities.choices, default=NegativeOpportunities.NET
    )
    quality_gate = models.CharField(
        max_length=15, choices=QualityGate.choices, default=QualityGate.ALL_OR_NOTHING
    )
    min_savings_threshold_pct = percent_field(
        null=True,
        blank=True,
        help_text="Nothing is shared if gross savings are below this % of expected cost.",
    )
    leaver_policy = models.CharField(
        max_length=10, choices=LeaverPolicy.choices, default=LeaverPolicy.PRO_RATA
    )
    distribution_cap = money_field(
        null=True,
        blank=True,
        help_text="Total savings identified at signing: cumulative distributions never exceed it.",
    )
    reprice_baseline = models.BooleanField(default=True)
    severity_tolerance_pct = percent_field(default=Decimal("10"))
    quality_tolerance_pct = percent_field(default=Decimal("10"))

    class Meta:
        ordering = ["agreement", "version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(fields=["agreement", "version"], name="terms_version_unique"),
            models.UniqueConstraint(
                fields=["agreement", "effective_from"], name="terms_effective_from_unique"
            ),
            models.CheckConstraint(
                condition=Q(physician_share_pct__lte=50) & Q(physician_share_pct__gte=0),
                name="terms_physician_share_at_most_50",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agreement} terms v{self.version} from {self.effective_from}"

    def physician_ids(self) -> set[int]:
        """A physician may read the rows of an agreement they take part in."""
        return self.agreement.physician_ids()


class ProgrammeYear(TenantModel):
    """A closed date range of the agreement's term, adjudicated once."""

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="programme_years"
    )
    number = models.PositiveSmallIntegerField()
    start = models.DateField()
    end = models.DateField()

    class Meta:
        ordering = ["agreement", "number"]
        constraints = [
            models.UniqueConstraint(fields=["agreement", "number"], name="programme_year_unique"),
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")), name="programme_year_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"Year {self.number} ({self.start:%b %-d, %Y} – {self.end:%b %-d, %Y})"

    @property
    def label(self) -> str:
        return (
            f"Year {self.number} · {self.start.year}"
            if self.start.year == self.end.year
            else (f"Year {self.number} · {self.start.year}–{self.end.year}")
        )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def physician_ids(self) -> set[int]:
        """A physician may read the rows of an agreement they take part in."""
        return self.agreement.physician_ids()


class Participation(TenantModel):
    """A physician's participation in one agreement (a physician may be in several)."""

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="participations"
    )
    physician = models.ForeignKey(
        Physician, on_delete=models.PROTECT, related_name="participations"
    )
    join_date = models.DateField()
    leave_date = models.DateField(null=True, blank=True, help_text="Voluntary leave.")
    termination_date = models.DateField(null=True, blank=True)
    termination_reason = models.TextField(blank=True)
    for_cause = models.BooleanField(default=False)
    ownership_pct = percent_field(
        null=True, blank=True, help_text="Only for distribution by ownership."
    )

    class Meta:
        ordering = ["agreement", "physician__last_name", "physician__first_name", "physician_id"]
        constraints = [
            models.UniqueConstraint(fields=["agreement", "physician"], name="participation_unique"),
            models.CheckConstraint(
                condition=Q(leave_date__isnull=True) | Q(leave_date__gte=models.F("join_date")),
                name="participation_leave_after_join",
            ),
            models.CheckConstraint(
                condition=Q(termination_date__isnull=True)
                | Q(termination_date__gte=models.F("join_date")),
                name="participation_termination_after_join",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.physician} in {self.agreement}"

    @property
    def end_date(self):
        dates = [d for d in (self.leave_date, self.termination_date) if d]
        return min(dates) if dates else None


class FixedFeeMode(models.TextChoices):
    ANNUAL = "annual", "Annual amount"
    HOURLY = "hourly", "Hours × hourly rate"


class FMVOpinion(TenantModel):
    """A fair-market-value opinion. Activation and approval need one covering the whole year."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="fmv_opinions")
    valuator = models.CharField(max_length=200)
    issue_date = models.DateField()
    effective_start = models.DateField()
    effective_end = models.DateField()
    total_max_annual = money_field("total maximum annual compensation")
    fixed_mode = models.CharField(
        max_length=10, choices=FixedFeeMode.choices, default=FixedFeeMode.ANNUAL
    )
    fixed_annual = money_field(null=True, blank=True)
    fixed_hours = hours_field(null=True, blank=True)
    hourly_rate = money_field(null=True, blank=True)
    max_incentive = money_field("maximum incentive")
    rate_p25 = money_field("25th percentile rate", null=True, blank=True)
    rate_p50 = money_field("50th percentile rate", null=True, blank=True)
    rate_p75 = money_field("75th percentile rate", null=True, blank=True)
    rate_p90 = money_field("90th percentile rate", null=True, blank=True)
    justification = models.TextField(
        blank=True, help_text="Required when the rate is above the 75th."
    )
    # Not a column: the soft warnings of the last save, set by the API for its response.
    warnings: list[str]

    class Meta:
        ordering = ["agreement", "-effective_start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_end__gte=models.F("effective_start")),
                name="fmv_effective_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"FMV opinion by {self.valuator} ({self.issue_date})"

    @property
    def fixed_portion(self) -> Decimal | None:
        if self.fixed_mode == FixedFeeMode.HOURLY:
            if self.fixed_hours is None or self.hourly_rate is None:
                return None
            # Half-up to cents through the one rounding helper (0.25 h x $100.10 = $25.03).
            return round_money(self.fixed_hours * self.hourly_rate)
        return self.fixed_annual

    def covers(self, start, end) -> bool:
        return self.effective_start <= start and self.effective_end >= end


class ManagementDuty(TenantModel):
    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="duties")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    required_monthly_hours = hours_field(default=Decimal("0"))
    max_monthly_hours = hours_field()

    class Meta:
        ordering = ["agreement", "name"]
        constraints = [
            models.UniqueConstraint(fields=["agreement", "name"], name="duty_name_unique"),
            models.CheckConstraint(
                condition=Q(max_monthly_hours__gte=models.F("required_monthly_hours")),
                name="duty_max_at_least_required",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def physician_ids(self) -> set[int]:
        """A physician may read the rows of an agreement they take part in."""
        return self.agreement.physician_ids()


class TimeSheetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    RETURNED = "returned", "Returned"


class TimeSheet(TenantModel):
    """One physician's hours for one month of one agreement; approved months are locked."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="timesheets")
    physician = models.ForeignKey(Physician, on_delete=models.PROTECT, related_name="timesheets")
    month = models.DateField(help_text="First day of the month.")
    status = models.CharField(
        max_length=10, choices=TimeSheetStatus.choices, default=TimeSheetStatus.DRAFT
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["agreement", "-month", "physician__last_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "physician", "month"], name="timesheet_unique_per_month"
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="timesheet_month_first_day"),
        ]

    def __str__(self) -> str:
        return f"{self.physician} · {self.month:%B %Y}"

    @property
    def is_locked(self) -> bool:
        return self.status == TimeSheetStatus.APPROVED


class TimeEntry(TenantModel):
    timesheet = models.ForeignKey(TimeSheet, on_delete=models.CASCADE, related_name="entries")
    duty = models.ForeignKey(ManagementDuty, on_delete=models.PROTECT, related_name="entries")
    hours = hours_field(validators=[MinValueValidator(Decimal("0"))])
    description = models.TextField()

    class Meta:
        ordering = ["timesheet", "duty__name"]
        constraints = [
            models.UniqueConstraint(fields=["timesheet", "duty"], name="time_entry_unique"),
            models.CheckConstraint(condition=Q(hours__gte=0), name="time_entry_hours_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.duty}: {self.hours} h"

    @property
    def physician_id(self) -> int:
        return self.timesheet.physician_id


class CommitteeMeeting(TenantModel):
    """The programme committee meets quarterly; attendance feeds physician engagement."""

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="committee_meetings"
    )
    held_on = models.DateField()
    physicians_present = models.ManyToManyField(
        Physician, blank=True, related_name="committee_meetings"
    )
    hospital_attendees = models.TextField(blank=True, help_text="One per line.")
    administrator_attendees = models.TextField(blank=True, help_text="One per line.")
    minutes = models.TextField(blank=True)

    class Meta:
        ordering = ["agreement", "-held_on"]

    def __str__(self) -> str:
        return f"Committee meeting {self.held_on}"

    def physician_ids(self) -> set[int]:
        return set(self.agreement.participations.values_list("physician_id", flat=True))


class FlagSeverity(models.TextChoices):
    INFO = "info", "Information"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


# What each flag kind is called for a reader (a kind is a code the scans and calculations
# raise; a page or PDF shows this name, never the code).
FLAG_KIND_LABELS = {
    "agreement_expiring": "Agreement expiring",
    "committee_missing": "Committee meetings missing",
    "fmv_expiring": "FMV opinion expiring",
    "hours_above_max": "Hours above the maximum",
    "logs_missing": "Duty logs missing",
    "npi_invalid": "Invalid NPI",
    "savings_severity": "Case severity changed",
    "savings_federal_rise": "Rise in federal-payer cases",
    "savings_patient_notice": "Patient notice missing",
    "savings_quality": "Quality gate not met",
    "small_denominator": "Too few cases",
    "approval_blocker": "Blocks approval",
    "duplicate": "Duplicate",
    "month_held": "Month held",
    "refused": "Refused",
    "results_missing": "Results missing",
    "terms_invalid": "Terms incomplete",
}


def flag_kind_label(kind: str) -> str:
    """A flag kind in words; an unknown code is spelled out rather than shown raw."""
    if not kind:
        return ""
    return FLAG_KIND_LABELS.get(kind) or kind.replace("_", " ").capitalize()


class ComplianceFlag(TenantModel):
    """A compliance issue raised by the daily scan or by a calculation; blocking flags stop
    approval until resolved. ``key`` identifies the condition so a rescan updates, not dupes."""

    agreement = models.ForeignKey(
        Agreement, null=True, blank=True, on_delete=models.CASCADE, related_name="compliance_flags"
    )
    programme_year = models.ForeignKey(
        ProgrammeYear,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="compliance_flags",
    )
    physician = models.ForeignKey(
        Physician, null=True, blank=True, on_delete=models.CASCADE, related_name="compliance_flags"
    )
    kind = models.CharField(max_length=50, db_index=True)
    key = models.CharField(max_length=200)
    severity = models.CharField(
        max_length=10, choices=FlagSeverity.choices, default=FlagSeverity.WARNING
    )
    blocking = models.BooleanField(default=False)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when raised by the system.",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    auto_cleared = models.BooleanField(default=False)

    @property
    def kind_label(self) -> str:
        return flag_kind_label(self.kind)

    class Meta:
        ordering = ["resolved_at", "-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_flag_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{flag_kind_label(self.kind)}: {self.message[:60]}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class DocumentKind(models.TextChoices):
    SIGNED_AGREEMENT = "signed_agreement", "Signed agreement"
    FMV_LETTER = "fmv_letter", "FMV letter"
    AMENDMENT = "amendment", "Amendment"
    OTHER = "other", "Other"


def _document_path(instance: AgreementDocument, filename: str) -> str:
    return f"org-{instance.organization_id}/agreements/{instance.agreement_id}/{filename}"


class AgreementDocument(TenantModel):
    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to=_document_path)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agreement", "-uploaded_at"]

    def __str__(self) -> str:
        return self.title


class MilestoneStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class Milestone(TenantModel):
    """The implementation timeline from the first meeting to execution (90 days by default)."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="milestones")
    name = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    owner = models.CharField(max_length=200, blank=True)
    due_date = models.DateField()
    status = models.CharField(
        max_length=15, choices=MilestoneStatus.choices, default=MilestoneStatus.NOT_STARTED
    )
    completed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["agreement", "position", "due_date"]

    def __str__(self) -> str:
        return self.name

    def physician_ids(self) -> set[int]:
        """A physician may read the rows of an agreement they take part in."""
        return self.agreement.physician_ids()


class RosterImport(MasterImport):
    """One uploaded physician roster (CSV or XLSX): creates and updates physicians, and joins
    or leaves them from ``agreement`` when its rows give dates. Applied whole or not at all."""

    agreement = models.ForeignKey(
        Agreement,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="roster_imports",
        help_text="The agreement the rows' join and leave dates apply to.",
    )

    class Meta(MasterImport.Meta):
        verbose_name = "roster import"
