"""Backups: a real round trip (pg_dump/pg_restore on PostgreSQL; the SQLite copy otherwise)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django_scopes import scopes_disabled

from agreements import models as am
from comanage.core.models import Membership, Organization, Role
from comanage.core.security.backup import (
    BackupError,
    _pg_args,
    _pg_replace,
    backup_create,
    read_manifest,
    tenant_models,
)
from tests import factories as f

postgres_only = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="pg_dump/pg_restore need PostgreSQL (set DATABASE_URL); CI runs it",
)


def snapshot(organization: Organization) -> dict[str, list[dict]]:
    """Every tenant-owned row of the organization, table by table, plus the organization."""
    with scopes_disabled():
        rows = {
            m._meta.label: [
                dict(r)
                for r in m._base_manager.filter(organization=organization).order_by("pk").values()
            ]
            for m in tenant_models()
        }
    rows["core.Organization"] = list(Organization.objects.filter(pk=organization.pk).values())
    return rows


def media_snapshot() -> dict[str, bytes]:
    root = Path(settings.MEDIA_ROOT)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def media_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def hospital(world, media_root):  # type: ignore[no-untyped-def]
    org = world.org
    agreement = f.AgreementFactory(organization=org)
    f.TermsFactory(agreement=agreement)
    f.ProgrammeYearFactory(agreement=agreement)
    f.FMVOpinionFactory(agreement=agreement)
    f.ParticipationFactory(agreement=agreement, physician=world.physician)
    with scopes_disabled():
        meeting = am.CommitteeMeeting.objects.create(
            organization=org, agreement=agreement, held_on=dt.date(2026, 3, 2), minutes="Q1"
        )
        meeting.physicians_present.set([world.physician])
        document = am.AgreementDocument(
            organization=org,
            agreement=agreement,
            kind="signed_agreement",
            title="Executed agreement",
            original_name="agreement.pdf",
            sha256="0" * 64,
            size=17,
        )
        document.file.save("agreement.pdf", ContentFile(b"%PDF-1.7 signed\n"), save=True)
    return org


def damage(world) -> None:  # type: ignore[no-untyped-def]
    with scopes_disabled():
        am.AgreementTerms.objects.filter(organization=world.org).update(
            annual_fixed_fee=Decimal("1.00")
        )
        am.Participation.objects.filter(organization=world.org).delete()
        Membership.objects.filter(organization=world.org, role=Role.AUDITOR).delete()
        am.Agreement.objects.filter(organization=world.org).update(name="tampered")
    for path in Path(settings.MEDIA_ROOT).rglob("*.pdf"):
        path.write_bytes(b"overwritten")
    (Path(settings.MEDIA_ROOT) / "stray.txt").write_text("added after the backup")


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_full_backup_and_restore_round_trip_on_postgresql(world, hospital, tmp_path):
    usage = _import_usage(world)  # the usage table is partitioned: one partition per import
    before, files_before = snapshot(hospital), media_snapshot()
    assert len(before["savings.UsageRow"]) == 3
    other_before = snapshot(world.other_org)
    assert files_before and any(before[m] for m in before if m != "core.Organization")
    call_command("backup", "--output", str(tmp_path / "backups"))
    (folder,) = (tmp_path / "backups").iterdir()
    manifest = read_manifest(folder)
    assert manifest["database_vendor"] == "postgresql"
    assert {"database.dump", "media.tar.gz"} <= set(manifest["files"])
    assert ["core", "0001_initial"] in manifest["migrations"]
    assert (folder / "database.dump").read_bytes()[:5] == b"PGDMP"  # custom format

    damage(world)
    assert snapshot(hospital) != before

    with scopes_disabled():
        usage.delete()  # drops the import's partition
    assert snapshot(hospital) != before

    call_command("restore", str(folder), "--noinput")
    connection.close()
    assert snapshot(hospital) == before
    assert snapshot(world.other_org) == other_before
    assert media_snapshot() == files_before


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_restore_that_fails_part_way_leaves_the_database_as_it_was(world, hospital, tmp_path):
    _import_usage(world)
    folder = backup_create(output_dir=tmp_path)
    before = snapshot(hospital)
    dump = folder / "database.dump"
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    args, env = _pg_args()
    connection.close()
    with pytest.raises(BackupError, match="pg_restore failed"):
        _pg_replace(broken, args, env)
    assert snapshot(hospital) == before


def _import_usage(world):  # type: ignore[no-untyped-def]
    from tests.savings.helpers import example_a_agreement, import_text, usage_csv, year

    agreement = example_a_agreement(world)
    rows = [
        {"case_id": f"c{i}", "physician_npi": "1000000004", "item_code": "A1"} for i in range(3)
    ]
    with world.scope():
        return import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )


@pytest.mark.django_db(transaction=True)
def test_sqlite_fallback_round_trip(world, hospital, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite fallback is exercised on SQLite runs")
    before, files_before = snapshot(hospital), media_snapshot()
    folder = backup_create(output_dir=tmp_path)
    assert "database.sqlite3" in read_manifest(folder)["files"]
    damage(world)
    call_command("restore", str(folder), "--noinput")
    assert snapshot(hospital) == before
    assert media_snapshot() == files_before


@pytest.mark.django_db(transaction=True)
def test_an_organization_extract_holds_only_that_organization_and_restores_it(
    world, hospital, tmp_path
):
    other_agreement = f.AgreementFactory(organization=world.other_org, name="Lakeview only")
    before, files_before = snapshot(hospital), media_snapshot()
    call_command("backup", "--output", str(tmp_path / "backups"), "--organization", "riverside")
    (folder,) = (tmp_path / "backups").iterdir()
    export = (folder / "organization.json").read_text()
    assert "Lakeview only" not in export and "lakeview" not in export
    rows = json.loads(export)
    assert {r["fields"].get("organization", r["pk"]) for r in rows} == {hospital.pk}
    assert not (folder / "database.dump").exists()

    with scopes_disabled():
        am.AgreementTerms.objects.filter(organization=hospital).update(
            annual_fixed_fee=Decimal("1.00")
        )
        am.Participation.objects.filter(organization=hospital).delete()
    for path in Path(settings.MEDIA_ROOT).rglob("*.pdf"):
        path.write_bytes(b"overwritten")
    call_command("restore", str(folder), "--noinput")
    after = snapshot(hospital)
    for table in before:
        if table.startswith("agreements.Historical") or table.startswith("core.Historical"):
            continue  # the damage itself wrote history rows; the extract adds none back
        assert after[table] == before[table], table
    assert media_snapshot() == files_before
    with scopes_disabled():
        assert am.Agreement.objects.filter(pk=other_agreement.pk).exists()


def test_a_tampered_backup_is_refused(db, world, media_root, tmp_path):
    folder = backup_create(output_dir=tmp_path, organization=world.org)
    with (folder / "organization.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(BackupError, match="checksum"):
        read_manifest(folder)


def test_the_manifest_records_time_checksums_and_migrations(db, world, media_root, tmp_path):
    folder = backup_create(output_dir=tmp_path, organization=world.org)
    manifest = json.loads((folder / "manifest.json").read_text())
    created = dt.datetime.fromisoformat(manifest["created_at"])
    assert abs((dt.datetime.now(tz=dt.UTC) - created).total_seconds()) < 60
    assert all(len(v["sha256"]) == 64 for v in manifest["files"].values())
    assert ["core", "0001_initial"] in manifest["migrations"]


def _m2m_rows(organization: Organization) -> set[tuple[str, int, int]]:
    """Every many-to-many link of the organization's tenant rows: (field, from pk, to pk)."""
    links = set()
    with scopes_disabled():
        for model in tenant_models():
            for field in model._meta.many_to_many:
                through = field.remote_field.through
                source = field.m2m_field_name() + "_id"
                target = field.m2m_reverse_field_name() + "_id"
                owned = model._base_manager.filter(organization=organization).values("pk")
                for row in through.objects.filter(**{f"{source}__in": owned}).values(
                    source, target
                ):
                    links.add((f"{model._meta.label}.{field.name}", row[source], row[target]))
    return links


def test_every_many_to_many_of_a_tenant_model_stays_inside_the_tenant():
    """An organization extract carries many-to-many links as primary keys: each must point to
    rows of the same organization's tenant models, or the extract would not be self-contained."""
    tenant = set(tenant_models())
    many = [(m, f) for m in tenant for f in m._meta.many_to_many]
    assert many, "no many-to-many on any tenant model: this guard checks nothing"
    for model, field in many:
        assert field.related_model in tenant, f"{model._meta.label}.{field.name}"


@pytest.mark.django_db(transaction=True)
def test_an_organization_extract_keeps_many_to_many_links(world, hospital, tmp_path):
    links = _m2m_rows(hospital)
    assert any(name.endswith("physicians_present") for name, _a, _b in links)
    folder = backup_create(output_dir=tmp_path, organization=hospital)
    with scopes_disabled():
        am.CommitteeMeeting.objects.filter(organization=hospital).first().physicians_present.clear()
    assert _m2m_rows(hospital) != links
    call_command("restore", str(folder), "--noinput")
    assert _m2m_rows(hospital) == links


@pytest.mark.parametrize("organization", [False, True], ids=["full", "organization"])
@pytest.mark.django_db(transaction=True)
def test_a_backup_is_readable_by_its_owner_only_whatever_the_umask(
    world, hospital, tmp_path, organization
):
    previous = os.umask(0o002)  # group- and world-readable files and folders by default
    try:
        folder = backup_create(output_dir=tmp_path, organization=hospital if organization else None)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.iterdir())
    assert "manifest.json" in {p.name for p in files} and len(files) >= 3
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


@pytest.mark.django_db(transaction=True)
def test_a_backup_that_fails_part_way_leaves_no_folder(world, hospital, tmp_path, monkeypatch):
    from comanage.core.security import backup

    def broken_tar(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(backup, "_tar_media", broken_tar)
    with pytest.raises(OSError, match="disk full"):
        backup_create(output_dir=tmp_path / "backups")
    assert list((tmp_path / "backups").iterdir()) == []
    with pytest.raises(OSError, match="disk full"):
        backup_create(output_dir=tmp_path / "backups", organization=hospital)
    assert list((tmp_path / "backups").iterdir()) == []
