"""Refresh the library of indicator templates: two definitions named a file column where a
reader expects words ("Median length of stay, in days.")."""

from django.db import migrations


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    from indicators.library import templates_load

    templates_load(apps.get_model("indicators", "IndicatorTemplate"))


class Migration(migrations.Migration):
    dependencies = [("indicators", "0005_caseimport_mapping")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
