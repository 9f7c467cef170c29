"""Backups: the database (pg_dump custom format, or a copy of the SQLite file) and the uploaded
files (a tar of MEDIA_ROOT), with a manifest of checksums and the migration state.

``backup_create`` writes a folder ``comanage-<UTC time>/`` holding ``database.dump`` (or
``database.sqlite3``), ``media.tar.gz`` and ``manifest.json``. ``backup_restore`` checks every
checksum first, then replaces the database (the ``public`` schema dropped and the dump restored
in one transaction) and MEDIA_ROOT (extracted beside it, then swapped in).

``--organization SLUG`` makes an organization extract instead: that organization's rows of
every tenant-owned table (and the organization itself) as JSON, and only its files. It carries
no other hospital's data, so it can be handed over; restoring it writes those rows back
(insert or update by primary key) and puts its files back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.db import connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django_scopes import scope, scopes_disabled

from comanage.core.models import Organization

MANIFEST = "manifest.json"
MEDIA_ARCHIVE = "media.tar.gz"
ORG_EXPORT = "organization.json"
FORMAT_VERSION = 1


class BackupError(Exception):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_args() -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    args = []
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    args += ["--dbname", str(db["NAME"])]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed ({result.returncode}): {result.stderr[-2000:]}")


def _pg_replace(dump: Path, args: list[str], env: dict[str, str]) -> None:
    """Replace the database's schema with the dump's, in one transaction.

    ``pg_restore --clean`` cannot drop a partitioned table's partitions one constraint at a
    time (the usage table is partitioned), so the script starts by dropping the ``public``
    schema whole. pg_restore writes the SQL and psql runs it with the drop, in a single
    transaction that stops at the first error. If pg_restore fails part-way, psql is killed
    before it can commit, so the database is untouched."""
    psql_command = [
        "psql",
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set",
        "ON_ERROR_STOP=1",
        *args,
    ]
    restore_command = ["pg_restore", "--no-owner", "--no-privileges", "--file", "-", str(dump)]
    psql = subprocess.Popen(  # noqa: S603
        psql_command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert psql.stdin is not None and psql.stderr is not None
    script_sent = False
    try:
        psql.stdin.write(b"DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n")
        psql.stdin.flush()
        restore = subprocess.run(  # noqa: S603
            restore_command,
            stdout=psql.stdin,  # noqa: S603
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        if restore.returncode != 0:
            raise BackupError(
                f"pg_restore failed ({restore.returncode}): "
                f"{restore.stderr.decode(errors='replace')[-2000:]}"
            )
        psql.stdin.close()  # the end of the script: psql commits, unless a statement failed
        script_sent = True
        errors = psql.stderr.read().decode(errors="replace")
    finally:
        if not script_sent:
            psql.kill()  # before its input ends, so it never commits a partial restore
        psql.wait()
    if psql.returncode != 0:
        raise BackupError(f"psql failed ({psql.returncode}): {errors[-2000:]}")


def applied_migrations() -> list[list[str]]:
    recorder = MigrationRecorder(connection)
    return sorted([app, name] for app, name in recorder.applied_migrations())


def tenant_models() -> list[type[models.Model]]:
    """Every model with an ``organization`` foreign key to core.Organization (history too)."""
    found = []
    for model in apps.get_models():
        field = next((f for f in model._meta.fields if f.name == "organization"), None)
        if field is not None and field.is_relation and field.related_model is Organization:
            found.append(model)
    return found


def organization_files(organization: Organization) -> list[str]:
    """Names (relative to MEDIA_ROOT) of the files the organization's rows point to."""
    names: set[str] = set()
    if organization.logo.name:
        names.add(organization.logo.name)
    with scopes_disabled():
        for model in tenant_models():
            file_fields = [f.name for f in model._meta.fields if isinstance(f, models.FileField)]
            for field in file_fields:
                rows = model._base_manager.filter(organization=organization)
                names.update(n for n in rows.values_list(field, flat=True) if n)
    return sorted(names)


def _tar_media(target: Path, only: list[str] | None) -> int:
    root = Path(settings.MEDIA_ROOT)
    count = 0
    with tarfile.open(target, "w:gz") as archive:
        if root.exists():
            if only is None:
                paths = sorted(p for p in root.rglob("*") if p.is_file())
            else:
                paths = [root / name for name in only if (root / name).is_file()]
            for path in paths:
                archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
                count += 1
    return count


def backup_create(*, output_dir: Path, organization: Organization | None = None) -> Path:
    """Write a backup folder under ``output_dir`` and return its path.

    The backup holds patient data, password hashes and TOTP secrets: the folder is 0700 from
    before its first file is written, and every file in it 0600, whatever the umask. A backup
    that fails part-way removes its folder, so no partial backup is ever mistaken for one."""
    now = dt.datetime.now(tz=dt.UTC)
    name = f"comanage-{now:%Y%m%dT%H%M%S%fZ}" + (f"-{organization.slug}" if organization else "")
    target = Path(output_dir) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir(mode=0o700, exist_ok=False)
    try:
        os.chmod(target, 0o700)  # mkdir's mode is filtered by the umask; this is not
        _write_backup(target, now, organization)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _write_backup(target: Path, now: dt.datetime, organization: Organization | None) -> None:
    vendor = connection.vendor
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created_at": now.isoformat(),
        "database_vendor": vendor,
        "organization": organization.slug if organization else None,
        "migrations": applied_migrations(),
        "files": {},
    }
    if organization is not None:
        _export_organization(organization, target / ORG_EXPORT)
        manifest["media_files"] = _tar_media(
            target / MEDIA_ARCHIVE, organization_files(organization)
        )
    else:
        if vendor == "postgresql":
            args, env = _pg_args()
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--file",
                    str(target / "database.dump"),
                    *args,
                ],
                env,
            )
        elif vendor == "sqlite":
            connection.ensure_connection()
            destination = sqlite3.connect(target / "database.sqlite3")
            try:
                connection.connection.backup(destination)
            finally:
                destination.close()
        else:
            raise BackupError(f"Backups of {vendor} databases are not supported.")
        manifest["media_files"] = _tar_media(target / MEDIA_ARCHIVE, None)
    for path in sorted(target.iterdir()):
        os.chmod(path, 0o600)
        manifest["files"][path.name] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    _write_private(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (0600 from its creation)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _export_organization(organization: Organization, path: Path) -> None:
    objects: list[Any] = [organization]
    # Serialized inside the organization's scope: the serializer reads every many-to-many
    # (e.g. a committee meeting's physicians_present) through the target model's scoped
    # manager, which raises without a scope and, within it, sees only this organization's rows.
    with scope(organization=organization):
        for model in tenant_models():
            objects.extend(model._base_manager.filter(organization=organization).order_by("pk"))
        # The "python" serializer then json with full precision: Django's JSON encoder would
        # cut timestamps to milliseconds, and the restore must give back the rows exactly.
        rows = serializers.serialize("python", objects)
    _write_private(path, json.dumps(rows, default=_exact_json, indent=1))


def _exact_json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"Cannot export {type(value).__name__}")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, after checking every file's checksum against it."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} has no readable {MANIFEST}.") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"Unknown backup format {manifest.get('format')!r}.")
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.is_file() or _sha256(file) != expected["sha256"]:
            raise BackupError(f"{name} is missing or does not match its checksum.")
    return manifest


def migration_gap(manifest: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(migrations in the backup this code does not know, this code's migrations it lacks)."""
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    backup = {tuple(m) for m in manifest["migrations"]}
    unknown = sorted(list(m) for m in backup - known if m[0] in {k[0] for k in known})
    missing = sorted(list(m) for m in known - backup)
    return unknown, missing


def _restore_media(archive_path: Path, *, replace_all: bool) -> int:
    root = Path(settings.MEDIA_ROOT)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".media-restore-", dir=root.parent))
    with tarfile.open(archive_path, "r:gz") as archive:
        members = archive.getmembers()
        archive.extractall(staging, filter="data")  # refuses absolute paths and ../
    count = sum(1 for m in members if m.isfile())
    if replace_all:
        old = root.with_name(root.name + ".before-restore")
        if old.exists():
            shutil.rmtree(old)
        if root.exists():
            os.chmod(staging, root.stat().st_mode & 0o7777)  # mkdtemp made it 0700
            root.rename(old)
        staging.rename(root)
        if old.exists():
            shutil.rmtree(old)
    else:
        for file in (p for p in staging.rglob("*") if p.is_file()):
            destination = root / file.relative_to(staging)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)
        shutil.rmtree(staging)
    return count


def backup_restore(*, path: Path) -> dict[str, Any]:
    """Restore a backup folder made by ``backup_create``; returns its manifest."""
    path = Path(path)
    manifest = read_manifest(path)
    unknown, _missing = migration_gap(manifest)
    if unknown:
        raise BackupError(
            "The backup was made by newer code (unknown migrations: "
            + ", ".join(f"{a}.{n}" for a, n in unknown[:5])
            + "). Deploy it first."
        )
    if manifest["organization"]:
        rows = json.loads((path / ORG_EXPORT).read_text())
        with transaction.atomic(), scopes_disabled():
            for item in serializers.deserialize("python", rows):
                item.save()
        _restore_media(path / MEDIA_ARCHIVE, replace_all=False)
        return manifest
    if manifest["database_vendor"] != connection.vendor:
        raise BackupError(
            f"A {manifest['database_vendor']} backup cannot be restored into {connection.vendor}."
        )
    if connection.vendor == "postgresql":
        args, env = _pg_args()
        from django.db import connections

        connections.close_all()  # dropping the tables needs them free
        _pg_replace(path / "database.dump", args, env)
    else:
        connection.ensure_connection()
        source = sqlite3.connect(path / "database.sqlite3")
        try:
            source.backup(connection.connection)
        finally:
            source.close()
    _restore_media(path / MEDIA_ARCHIVE, replace_all=True)
    return manifest


__all__ = ["BackupError", "backup_create", "backup_restore", "read_manifest", "tenant_models"]
