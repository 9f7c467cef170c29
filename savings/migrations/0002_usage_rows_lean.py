"""Usage rows without database foreign keys, found through a BRIN index on the import.

Loading a 1,000,000-row file spent most of its time in the commit: Django's foreign keys are
deferred constraint triggers, one check per row per key at commit. The rows are written only by
the importer with ids it holds locked and deleted only through the ORM, which still cascades and
protects in Python, so the database-level checks are dropped (``db_constraint=False``).

Every query reads one import's rows, which one ``INSERT ... SELECT`` wrote into consecutive
pages: a BRIN index (PostgreSQL) serves that at a fraction of the cost of maintaining a B-tree
entry per row. SQLite has no BRIN and keeps a B-tree.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "savings_usagerow"
INDEX = "savings_usagerow_import_brin"


def forwards(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor == "postgresql":
        # pages_per_range 32: an import of a few hundred rows still gets its own ranges;
        # autosummarize: ranges filled by later imports are summarised by autovacuum.
        schema_editor.execute(f"CREATE INDEX {quote(INDEX)} ON {quote(TABLE)} USING brin "
                              "(data_import_id) WITH (pages_per_range = 32, autosummarize = on)")
    else:
        schema_editor.execute(f"CREATE INDEX {quote(INDEX)} ON {quote(TABLE)} (data_import_id)")


def backwards(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(INDEX)}")


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0002_historicaloidcprovider_oidcprovider'),
        ('savings', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usagerow',
            name='data_import',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='savings.dataimport'),
        ),
        migrations.AlterField(
            model_name='usagerow',
            name='organization',
            field=models.ForeignKey(db_constraint=False, db_index=False, editable=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='core.organization'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
