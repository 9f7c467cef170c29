"""`manage.py shell --organization <slug>`: the shell inside one organization's tenant scope.

Without ``--organization`` the shell has no scope, so tenant-owned queries raise (fail closed);
reaching across tenants needs an explicit ``with scopes_disabled():``.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands.shell import Command as DjangoShellCommand
from django_scopes import scope

from comanage.core.models import Organization


class Command(DjangoShellCommand):
    help = DjangoShellCommand.help + " --organization SLUG enters that organization's scope."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--organization", "-o", metavar="SLUG", help="Enter this organization's tenant scope."
        )

    def get_namespace(self, **options):
        namespace = super().get_namespace(**options)
        namespace["organization"] = getattr(self, "_organization", None)
        return namespace

    def handle(self, **options) -> None:
        slug = options.pop("organization", None)
        if not slug:
            self.stderr.write(
                "No organization scope: tenant-owned queries will raise. "
                "Use --organization SLUG (or scopes_disabled() deliberately)."
            )
            return super().handle(**options)
        self._organization = Organization.objects.filter(slug=slug).first()
        if self._organization is None:
            raise CommandError(f"No organization with slug {slug!r}.")
        self.stderr.write(f"Scope: {self._organization.name} (as `organization`).")
        with scope(organization=self._organization):
            return super().handle(**options)
