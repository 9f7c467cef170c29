"""``manage.py backup --output DIR [--organization SLUG]`` (``make backup``)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from comanage.core.models import Organization
from comanage.core.security.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump custom format; SQLite: a copy) and uploaded files, "
        "with a manifest. --organization writes one organization's extract instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            required=True,
            type=Path,
            help="Folder in which the backup folder is created.",
        )
        parser.add_argument("--organization", help="Slug: that organization's rows and files.")

    def handle(self, *args, **options):
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization {options['organization']!r}.")
        try:
            path = backup_create(output_dir=options["output"], organization=organization)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(path))
