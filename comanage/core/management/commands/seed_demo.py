"""Build the demo: two organizations, every role in each, and each app's demo data.

Idempotent: an organization that already exists is left as it is, so a second run adds nothing.
"""

from __future__ import annotations

import importlib
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_scopes import scopes_disabled

from comanage.core.audit import acting_as
from comanage.core.models import Membership, Organization, Role, User

DEMO_PASSWORD = "comanage-demo-2026"  # noqa: S105 - documented demo credential
DEMO_ORGANIZATIONS = [
    {
        "slug": "riverside",
        "name": "Riverside Medical Center",
        "primary_colour": "#1f4e79",
        "accent_colour": "#2a9d8f",
        "email_domains": "riverside.example",
    },
    {
        "slug": "lakeview",
        "name": "Lakeview Health",
        "primary_colour": "#5b2a86",
        "accent_colour": "#e07a5f",
        "email_domains": "lakeview.example",
    },
]
ROLE_NAMES = {
    Role.ADMINISTRATOR: ("Alex", "Morgan"),
    Role.EXECUTIVE: ("Erin", "Walsh"),
    Role.COUNSEL: ("Corey", "Lindqvist"),
    Role.CEO: ("Catherine", "Ortiz"),
    Role.AUDITOR: ("Avery", "Stone"),
}
APP_SEEDERS = ["agreements.demo", "indicators.demo", "savings.demo", "adjudication.demo"]
FORCE_ENV = "SEED_DEMO_FORCE_PRODUCTION"


def refuse_in_production(command: str, forced: bool, why: str) -> None:
    """Demo commands stop under production settings unless --force-production or FORCE_ENV."""
    forced = forced or os.environ.get(FORCE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    if getattr(settings, "COMANAGE_PRODUCTION", False) and not forced:
        raise CommandError(
            f"{command} refused: these are production settings, and {why}. Pass "
            f"--force-production (or set {FORCE_ENV}=true) only if this installation is "
            "a throw-away demonstration."
        )


def demo_email(slug: str, role: str) -> str:
    return f"{role}@{slug}.example"


class Command(BaseCommand):
    help = "Load demo organizations, users of every role and several years of synthetic data."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force-production",
            action="store_true",
            help=f"Load the demo even under production settings (or set {FORCE_ENV}=true).",
        )

    def handle(self, *args, **options) -> None:
        refuse_in_production(
            "seed_demo",
            options["force_production"],
            f"the demo creates users of every role with a published password ({DEMO_PASSWORD!r})",
        )
        quiet = options["verbosity"] == 0
        with scopes_disabled():
            admin_user = self._user("admin@comanage.example", "Sam", "Rivera")
            for spec in DEMO_ORGANIZATIONS:
                if Organization.objects.filter(slug=spec["slug"]).exists():
                    if not quiet:
                        self.stdout.write(f"{spec['name']}: already loaded, left as it is.")
                    continue
                with transaction.atomic(), acting_as(admin_user):
                    org = Organization.objects.create(**spec)
                    users = {}
                    for role, (first, last) in ROLE_NAMES.items():
                        users[role] = self._user(demo_email(org.slug, role), first, last)
                        Membership.objects.create(organization=org, user=users[role], role=role)
                    # The independent administrator's staff work for both hospitals.
                    Membership.objects.create(
                        organization=org, user=admin_user, role=Role.ADMINISTRATOR
                    )
                    for module_name in APP_SEEDERS:
                        try:
                            module = importlib.import_module(module_name)
                        except ModuleNotFoundError:
                            continue
                        module.seed(
                            organization=org,
                            users=users,
                            password=DEMO_PASSWORD,
                            stdout=_Silent() if quiet else self.stdout,
                        )
                if not quiet:
                    self.stdout.write(self.style.SUCCESS(f"{org.name}: demo data loaded."))

    def _user(self, email: str, first: str, last: str) -> User:
        user, created = User.objects.get_or_create(
            email=email, defaults={"first_name": first, "last_name": last}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user


class _Silent:
    """A stdout for the app seeders under ``--verbosity 0``."""

    def write(self, *args: object, **kwargs: object) -> None:
        pass
