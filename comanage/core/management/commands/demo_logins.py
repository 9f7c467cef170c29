from django.conf import settings
from django.core.management.base import BaseCommand
from django_scopes import scopes_disabled

from comanage.core.models import Membership

from .seed_demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="Where the server listens (make run HOST=… PORT=…).",
        )

    def handle(self, *args, **options) -> None:
        with scopes_disabled():
            memberships = list(
                Membership.objects.select_related("user", "organization", "physician")
                .filter(user__email__endswith=".example")
                .order_by("organization__name", "role", "user__email")
            )
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Comanage is starting at {options['url']}"))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for m in memberships:
            extra = f" ({m.physician})" if m.physician_id else ""
            self.stdout.write(
                f"  {m.organization.name:<26} {m.get_role_display():<22} {m.user.email}{extra}"
            )
        if not settings.COMANAGE_REQUIRE_2FA:
            self.stdout.write(
                "Two-factor sign-in is off in this local demo (REQUIRE_2FA=true "
                "turns it on; production always requires it)."
            )
        self.stdout.write("")
