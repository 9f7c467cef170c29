"""``manage.py organization_create --name ... --slug ... --admin-email ...``: bring a hospital
onto the installation and invite its first administrator (the e-mail carries the link)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from comanage.core.installation.services import organization_create
from comanage.core.people.services import invitation_link


class Command(BaseCommand):
    help = "Create an organization and invite its first administrator by e-mail."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="In its addresses: /o/<slug>/")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--short-name", default="")
        parser.add_argument("--time-zone", default="America/New_York")
        parser.add_argument(
            "--email-domains",
            default="",
            help="Comma-separated e-mail domains of the organization.",
        )
        parser.add_argument(
            "--restrict-to-domains",
            action="store_true",
            help="Invite only addresses of those domains.",
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help="The site's address for the link (default COMANAGE_SITE_URL).",
        )

    def handle(self, *args, **options) -> None:
        try:
            organization, invitation, raw = organization_create(
                name=options["name"],
                slug=options["slug"],
                admin_email=options["admin_email"],
                short_name=options["short_name"],
                time_zone=options["time_zone"],
                email_domains=options["email_domains"],
                restrict_to_domains=options["restrict_to_domains"],
                base_url=options["base_url"],
                actor=None,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"--{field.replace('_', '-')}: {' '.join(messages)}"
                for field, messages in exc.message_dict.items()
            )
            raise CommandError(problems) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{organization.name} created at /o/{organization.slug}/; invitation sent to "
                f"{invitation.email} (valid until {invitation.expires_at:%Y-%m-%d %H:%M %Z})."
            )
        )
        self.stdout.write(f"Invitation link: {invitation_link(raw, options['base_url'])}")
