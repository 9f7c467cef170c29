"""Build the demo: two organizations, every role in each, and each app's demo data.

Idempotent: an organization that already exists is left as it is, so a second run adds nothing.
"""

from __future__ import annotations

import importlib

from django.core.management.base import BaseCommand
from django.db import transaction
from django_scopes import scopes_disabled

from comanage.core.audit import acting_as
from comanage.core.models import Membership, Organization, Role, User

DEMO_PASSWORD = "comanage-demo-2026"  # noqa: S105 - documented demo credential
DEMO_ORGANIZATIONS = [
    {"slug": "riverside", "name": "Riverside Medical Center", "primary_colour": "#1f4e79",
     "accent_colour": "#2a9d8f", "email_domains": "riverside.example"},
    {"slug": "lakeview", "name": "Lakeview Health", "primary_colour": "#5b2a86",
     "accent_colour": "#e07a5f", "email_domains": "lakeview.example"},
]
ROLE_NAMES = {
    Role.ADMINISTRATOR: ("Alex", "Morgan"),
    Role.EXECUTIVE: ("Erin", "Walsh"),
    Role.COUNSEL: ("Corey", "Lindqvist"),
    Role.CEO: ("Catherine", "Ortiz"),
    Role.AUDITOR: ("Avery", "Stone"),
}
APP_SEEDERS = ["agreements.demo", "indicators.demo", "savings.demo", "adjudication.demo"]


def demo_email(slug: str, role: str) -> str:
    return f"{role}@{slug}.example"


class Command(BaseCommand):
    help = "Load demo organizations, users of every role and several years of synthetic data."

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        with scopes_disabled():
            admin_user = self._user("admin@comanage.example", "Sam", "Rivera")
            for spec in DEMO_ORGANIZATIONS:
                if Organization.objects.filter(slug=spec["slug"]).exists():
                    self.stdout.write(f"{spec['name']}: already loaded, left as it is.")
                    continue
                with transaction.atomic(), acting_as(admin_user):
                    org = Organization.objects.create(**spec)
                    users = {}
                    for role, (first, last) in ROLE_NAMES.items():
                        users[role] = self._user(demo_email(org.slug, role), first, last)
                        Membership.objects.create(organization=org, user=users[role], role=role)
                    # The independent administrator's staff work for both hospitals.
                    Membership.objects.create(organization=org, user=admin_user,
                                              role=Role.ADMINISTRATOR)
                    for module_name in APP_SEEDERS:
                        try:
                            module = importlib.import_module(module_name)
                        except ModuleNotFoundError:
                            continue
                        module.seed(organization=org, users=users, password=DEMO_PASSWORD,
                                    stdout=self.stdout)
                self.stdout.write(self.style.SUCCESS(f"{org.name}: demo data loaded."))

    def _user(self, email: str, first: str, last: str) -> User:
        user, created = User.objects.get_or_create(
            email=email, defaults={"first_name": first, "last_name": last})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user
