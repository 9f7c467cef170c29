"""Fuzz a running Comanage API by hand, with more examples than CI.

    python scripts/fuzz_api.py --base http://127.0.0.1:8000 --token cm_... --org riverside \
        [--outsider-token cm_...] [--examples 50]

``--token`` belongs to an administrator of ``--org``; ``--outsider-token`` to a user of another
organization (checked to receive nothing but 401/403/404 on ``--org``'s URLs).

``--write-examples`` first sends, per write operation, the refused and the valid body of
tests/api/write_examples.py, built in this process on the server's own database (run it with
the server's DATABASE_URL and the dev dependencies installed; it adds rows to ``--org``, so point
it at a demo or staging copy). Generated bodies seldom carry ids that exist, so without it few
writes reach 2xx. The examples' dates assume mid-2026 (tests pin the clock there).

Prints, per write operation, how many cases reached 2xx. Exit status 1 when anything failed, a
response was 5xx, or (with ``--write-examples``) a write operation never reached 2xx.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--org", default="riverside")
    parser.add_argument("--outsider-token")
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument(
        "--write-examples",
        action="store_true",
        help="send the write-example table's cases first (see above)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")
    from tests.api.fuzzing import fuzz_as_member, fuzz_as_outsider, load_schema

    explicit = _write_examples(args.org, args.token) if args.write_examples else None

    schema = load_schema(args.base)
    failed = False
    if args.outsider_token:
        outsider = fuzz_as_outsider(
            args.base,
            args.outsider_token,
            args.org,
            examples=max(2, args.examples // 2),
            schema=schema,
        )
        print(outsider.summary("outsider"))
        print("\n".join(outsider.failures))
        failed |= bool(outsider.failures)
    member = fuzz_as_member(
        args.base, args.token, args.org, examples=args.examples, schema=schema, explicit=explicit
    )
    print(member.summary("member"))
    print("\n\n".join(member.failures))
    failed |= bool(member.failures) or member.server_errors() > 0
    if args.write_examples and member.writes_never_2xx():
        print("write operations that never reached 2xx:", *member.writes_never_2xx(), sep="\n  ")
        failed = True
    return 1 if failed else 0


def _write_examples(org_slug: str, admin_token: str):  # type: ignore[no-untyped-def]
    """The example table's cases, built lazily on the server's database as the fuzz reaches
    them; counsel and the CEO act with fresh tokens of their own."""
    import django

    django.setup()
    from django_scopes import scopes_disabled

    from agreements.models import Physician
    from comanage.core.models import ApiToken, Membership, Organization
    from tests.api.write_examples import explicit_cases
    from tests.conftest import World

    def cases():  # type: ignore[no-untyped-def]
        with scopes_disabled():
            org = Organization.objects.get(slug=org_slug)
            world = World(org=org, other_org=org)
            tokens = {"administrator": admin_token}
            for role in ("administrator", "counsel", "ceo"):
                member = Membership.objects.filter(
                    organization=org, role=role, is_active=True
                ).first()
                if member is None:
                    raise SystemExit(f"{org_slug} has no active {role}")
                world.users[role] = member.user
                tokens.setdefault(role, ApiToken.issue(user=member.user, name="fuzz")[1])
            world.physician, world.other_physician = Physician.objects.filter(
                organization=org
            ).order_by("pk")[:2]
        yield from explicit_cases(world, tokens)

    return cases


if __name__ == "__main__":
    sys.exit(main())
