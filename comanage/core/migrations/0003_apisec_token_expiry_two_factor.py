"""Every API token expires, and records whether a 2FA-verified session created it.

Tokens without an expiry get the installation's default from today (so integrations do not
stop the day of the upgrade); their history rows are given the same date. Existing tokens are
marked as not created after two-factor verification: users whose role needs 2FA create new
ones after verifying (the old records cannot say how they were made).
"""

import datetime as dt

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

import comanage.core.models


def expire_open_ended_tokens(apps, schema_editor):  # type: ignore[no-untyped-def]
    expires_at = timezone.now() + dt.timedelta(days=settings.COMANAGE_API_TOKEN_DEFAULT_DAYS)
    for name in ("ApiToken", "HistoricalApiToken"):
        apps.get_model("core", name).objects.filter(expires_at__isnull=True).update(
            expires_at=expires_at)


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0002_historicaloidcprovider_oidcprovider"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="two_factor_verified",
            field=models.BooleanField(
                default=False,
                help_text="Created by a session that had passed two-factor verification."),
        ),
        migrations.AddField(
            model_name="historicalapitoken",
            name="two_factor_verified",
            field=models.BooleanField(
                default=False,
                help_text="Created by a session that had passed two-factor verification."),
        ),
        migrations.RunPython(expire_open_ended_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(default=comanage.core.models.token_expiry),
        ),
        migrations.AlterField(
            model_name="historicalapitoken",
            name="expires_at",
            field=models.DateTimeField(default=comanage.core.models.token_expiry),
        ),
    ]
