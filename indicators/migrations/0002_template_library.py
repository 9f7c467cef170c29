"""Load the global library of indicator templates (no tenant data)."""

from django.db import migrations


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    from indicators.library import templates_load

    templates_load(apps.get_model("indicators", "IndicatorTemplate"))


class Migration(migrations.Migration):
    dependencies = [("indicators", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
