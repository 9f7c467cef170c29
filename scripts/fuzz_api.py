"""Fuzz a running Comanage API by hand, with more examples than CI.

    python scripts/fuzz_api.py --base http://127.0.0.1:8000 --token cm_... --org riverside \
        [--outsider-token cm_...] [--examples 50]

``--token`` belongs to an administrator of ``--org``; ``--outsider-token`` to a user of another
organization (checked to receive nothing but 401/403/404 on ``--org``'s URLs). Exit status 1
when anything failed.
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
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")
    from tests.api.fuzzing import fuzz_as_member, fuzz_as_outsider, load_schema

    schema = load_schema(args.base)
    failed = False
    if args.outsider_token:
        outsider = fuzz_as_outsider(args.base, args.outsider_token, args.org,
                                    examples=max(2, args.examples // 2), schema=schema)
        print(outsider.summary("outsider"))
        print("\n".join(outsider.failures))
        failed |= bool(outsider.failures)
    member = fuzz_as_member(args.base, args.token, args.org, examples=args.examples,
                            schema=schema)
    print(member.summary("member"))
    print("\n\n".join(member.failures))
    return 1 if failed or member.failures else 0


if __name__ == "__main__":
    sys.exit(main())
