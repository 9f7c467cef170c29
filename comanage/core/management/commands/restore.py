"""``manage.py restore PATH`` (``make restore BACKUP=PATH``): replaces the database and files."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from comanage.core.security.backup import BackupError, backup_restore, read_manifest


class Command(BaseCommand):
    help = (
        "Restore a backup folder made by `manage.py backup`: checks its checksums, then "
        "replaces the database in one transaction (or copies the SQLite file) and the "
        "uploaded files. Stop the web server and the worker first."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args, **options):
        try:
            manifest = read_manifest(options["path"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        what = (
            f"organization {manifest['organization']}"
            if manifest["organization"]
            else "the WHOLE database and every uploaded file"
        )
        if options["interactive"]:
            answer = input(f"Restore {what} from {manifest['created_at']}? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Restore cancelled.")
        try:
            backup_restore(path=options["path"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored {what} from {manifest['created_at']}.")
        self.stdout.write("Run `manage.py migrate` if this code is newer than the backup.")
