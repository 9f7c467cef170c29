"""Users, organizations (the tenant), memberships with roles, background jobs, business events,
API tokens and idempotency records."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .tenancy import TenantModel, TenantOwned


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        """Sign-in by e-mail is case-insensitive: ``Alice@Hospital.org`` is alice@hospital.org
        (addresses are stored lower-cased; ``User.save``)."""
        return self.get(email__iexact=(username or "").strip())


class User(AbstractUser):
    """A person. Signs in with an e-mail address; what they may do depends on memberships."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    is_installation_admin = models.BooleanField(
        default=False,
        help_text="Installation staff: creates and deactivates organizations "
        "(not a role inside any organization).",
    )

    # The stubs type ``AbstractUser.objects`` as Django's username-based ``UserManager``; this
    # one signs people up by e-mail (Django's custom-user pattern: a ``BaseUserManager``).
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]
    history = HistoricalRecords()
    # Set by ``set_password`` until the next save (``AbstractBaseUser``; not in the stubs).
    _password: str | None

    class Meta:
        ordering = ["last_name", "first_name", "email"]

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.email:
            self.email = self.email.strip().lower()
        # ``set_password`` keeps the new raw password until the save: a changed or reset
        # password ends every API token (sessions end by Django's session hash check).
        password_changed = self._password is not None and self.pk is not None
        super().save(*args, **kwargs)
        if password_changed:
            ApiToken.revoke_all(user=self)


class Organization(models.Model):
    """The tenant: a hospital or health system. Nothing crosses organizations."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    primary_colour = models.CharField(
        max_length=7,
        default="#1f4e79",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #1f4e79.")],
    )
    accent_colour = models.CharField(
        max_length=7,
        default="#2a9d8f",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #2a9d8f.")],
    )
    logo = models.FileField(upload_to="branding/", blank=True)
    email_domains = models.CharField(
        max_length=500,
        blank=True,
        help_text="Comma-separated e-mail domains that sign in through this organization's SSO.",
    )
    case_id_key = models.CharField(
        max_length=64,
        default=secrets.token_hex,
        editable=False,
        help_text="Per-organization key for hashing patient case identifiers.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    short_name = models.CharField(
        max_length=40, blank=True, help_text="Used where space is short (menus, PDF footers)."
    )
    time_zone = models.CharField(max_length=64, default="America/New_York")
    restrict_to_domains = models.BooleanField(
        default=False, help_text="Invite only addresses of the e-mail domains above."
    )
    is_active = models.BooleanField(
        default=True,
        help_text="A deactivated organization keeps its data; nobody of it can "
        "sign in to it or use it through a token.",
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["case_id_key"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", "Program administrator"
    EXECUTIVE = "executive", "Hospital executive"
    COUNSEL = "counsel", "Legal counsel"
    CEO = "ceo", "CEO"
    PHYSICIAN = "physician", "Physician"
    AUDITOR = "auditor", "Auditor"


class Membership(TenantModel):
    """A user's role in one organization. A program administrator may belong to many."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    physician = models.ForeignKey(
        "agreements.Physician",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="memberships",
        help_text="Required for the physician role.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org"),
            # A physician record stands for one person (comanage.core.people).
            models.UniqueConstraint(
                fields=["physician"],
                condition=models.Q(physician__isnull=False),
                name="one_membership_per_physician",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="physician") | models.Q(physician__isnull=False),
                name="physician_membership_has_physician",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.organization_id}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(TenantOwned):
    """Long work run by the worker (imports, calculations, PDFs), with progress for the UI.

    Live progress lives in the cache (``comanage.core.jobs``) because the work itself runs in a
    transaction whose writes nobody can see until it commits.
    """

    kind = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(
        default=list, blank=True, help_text="First problems found: row, column, message."
    )
    error_count = models.PositiveIntegerField(default=0)
    dedupe_key = models.CharField(
        max_length=128,
        blank=True,
        help_text="Claims the work: a second job with the same key is refused.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    result_url = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"],
                condition=~models.Q(dedupe_key="") & ~models.Q(status="failed"),
                name="job_dedupe_key_unique_while_live",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def label(self) -> str:
        """What the job is, in words: "savings.import" -> "Cost data import"."""
        plain = self.kind.replace(".", " ").replace("_", " ").capitalize()
        return JOB_LABELS.get(self.kind, plain)


JOB_LABELS = {
    "savings.import": "Cost data import",
    "savings.workbook_head": "Reading a workbook's first rows",
    "savings.calculation": "Savings calculation",
    "indicator case import": "Patient-level case import",
    "adjudication run": "Adjudication calculation",
}


class BusinessEvent(TenantOwned):
    """A named, attributable business event (``report.approved``, ``payment.recorded``)."""

    name = models.CharField(max_length=60, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.name} by {self.actor_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_expiry(days: int | None = None) -> Any:
    """When a token issued now stops working: ``days`` (default
    ``COMANAGE_API_TOKEN_DEFAULT_DAYS``), never beyond ``COMANAGE_API_TOKEN_MAX_DAYS``."""
    maximum = int(settings.COMANAGE_API_TOKEN_MAX_DAYS)
    wanted = int(days) if days else int(settings.COMANAGE_API_TOKEN_DEFAULT_DAYS)
    return timezone.now() + dt.timedelta(days=max(1, min(wanted, maximum)))


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the raw value is shown once.

    Every token expires (``token_expiry``). A token stands for the session that created it, no
    more: ``two_factor_verified`` records whether that session had passed two-factor
    verification, and a user whose role needs 2FA can use only tokens that say so (a token made
    as an executive stops working when its user becomes an administrator). A password change
    or reset revokes every token of the user (``User.save``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=token_expiry)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    two_factor_verified = models.BooleanField(
        default=False, help_text="Created by a session that had passed two-factor verification."
    )

    history = HistoricalRecords(excluded_fields=["last_used_at", "token_hash"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, *, user: User, name: str, expires_at=None, two_factor_verified: bool = False
    ) -> tuple[ApiToken, str]:
        """A new token; ``expires_at`` defaults to the installation's default and is never
        later than its maximum."""
        latest = token_expiry(int(settings.COMANAGE_API_TOKEN_MAX_DAYS))
        expires_at = min(expires_at, latest) if expires_at is not None else token_expiry()
        raw = "cm_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=raw[:10],
            token_hash=_token_hash(raw),
            expires_at=expires_at,
            two_factor_verified=two_factor_verified,
        )
        return token, raw

    @classmethod
    def lookup(cls, raw: str) -> ApiToken | None:
        token = cls.objects.select_related("user").filter(token_hash=_token_hash(raw)).first()
        if token is None or not token.is_usable:
            return None
        return token

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is not None and self.expires_at > timezone.now()

    @classmethod
    def revoke_all(cls, *, user: User) -> int:
        """Revoke every live token of ``user`` (a password change or reset)."""
        return cls.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )


class IdempotencyRecord(models.Model):
    """The first response to a POST with an ``Idempotency-Key``; a retry gets it back."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"


class OIDCProvider(models.Model):
    """An organization's single sign-on (OpenID Connect) provider.

    Chosen at sign-in by the e-mail domain (``Organization.email_domains``). It signs in only
    people who already hold a membership of this organization; it never creates one.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="oidc_provider"
    )
    name = models.CharField(
        max_length=100, default="Hospital single sign-on", help_text="Shown on the sign-in button."
    )
    issuer = models.URLField(
        help_text="The provider's issuer URL; its discovery document is read from "
        "<issuer>/.well-known/openid-configuration."
    )
    client_id = models.CharField(max_length=200)
    client_secret = models.CharField(max_length=500)
    scopes = models.CharField(max_length=200, default="openid email profile")
    signing_algorithm = models.CharField(max_length=10, default="RS256")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["client_secret"])

    class Meta:
        verbose_name = "OIDC provider"

    def __str__(self) -> str:
        return f"{self.name} ({self.organization})"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def domains(self) -> list[str]:
        return organization_domains(self.organization)


def organization_domains(organization: Organization) -> list[str]:
    """The organization's e-mail domains, lower-cased, without ``@``."""
    return [
        d.strip().lstrip("@").lower() for d in organization.email_domains.split(",") if d.strip()
    ]


class Invitation(TenantOwned):
    """An invitation to join an organization with a role (``comanage.core.people``).

    Only the SHA-256 of the link's token is stored; the link works once, until ``expires_at``,
    and not after it is revoked or re-sent (a resend issues a new token).
    """

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    physician = models.ForeignKey(
        "agreements.Physician",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invitations",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["token_hash"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} · {self.get_role_display()}"

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.expires_at > timezone.now() else "expired"


class ImportKindChoice(models.TextChoices):
    USAGE = "usage", "Usage and cost file"
    PRICES = "prices", "Price file"
    CASES = "cases", "Patient-level case file"
    RESULTS = "results", "Indicator results"
    ROSTER = "roster", "Physician roster"
    ITEMS = "items", "Item master"


class ImportMapping(TenantModel):
    """A saved way of reading one source's export ("OR supply export"): which of its columns
    is which field, its date format, where its header is. Chosen again for a file with the same
    header; every edit is a new version (history kept) and each import records the version that
    read it."""

    kind = models.CharField(max_length=10, choices=ImportKindChoice.choices)
    name = models.CharField(max_length=100, help_text="The source, e.g. OR supply export.")
    header = models.JSONField(default=list, help_text="The file's header cells, in order.")
    header_digest = models.CharField(max_length=64, db_index=True)
    columns = models.JSONField(default=dict, help_text="File column -> field.")
    date_format = models.CharField(max_length=10, default="auto")
    header_row = models.PositiveSmallIntegerField(default=1)
    sheet = models.CharField(max_length=100, blank=True)
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(
        "in use",
        default=True,
        help_text="A mapping that imports refer to is deactivated instead of deleted.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "name"], name="one_mapping_per_source_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (version {self.version})"

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": dict(self.columns),
            "date_format": self.date_format,
            "header_row": self.header_row,
            "sheet": self.sheet,
            "mapping_id": self.pk,
            "name": self.name,
            "version": self.version,
        }
