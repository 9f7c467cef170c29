"""Permissions are declared here, once, and checked in one place (``membership_can``).

A permission is granted to a set of roles. Some are granted to physicians only for their own
records ("own"): the object passed must belong to the membership's physician. Views declare the
permission they need (``comanage.core.views.org_view`` / ``OrgPermissionMixin``); the API declares
one per action (``comanage.core.api.TenantViewSet.permission_map``). Within an organization a
refusal is 403; across organizations it is 404 (the middleware never reveals the object exists).

Counsel approves but cannot edit figures; an administrator edits data but cannot approve;
an executive reads; the CEO authorises payment; a physician sees only their own data.
"""

from __future__ import annotations

from typing import Any

import rules

from .models import Membership, Role

ADMIN, EXECUTIVE, COUNSEL, CEO, PHYSICIAN, AUDITOR = (
    Role.ADMINISTRATOR,
    Role.EXECUTIVE,
    Role.COUNSEL,
    Role.CEO,
    Role.PHYSICIAN,
    Role.AUDITOR,
)
READERS = frozenset({ADMIN, EXECUTIVE, COUNSEL, CEO, AUDITOR})
EVERYONE = READERS | {PHYSICIAN}


def _physician_id_of(obj: Any) -> int | None:
    """The physician a record belongs to, for physicians' "own data only" checks."""
    if obj is None:
        return None
    for attr in ("physician_id", "participant_physician_id"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    if hasattr(obj, "physician_ids"):  # an aggregate the physician takes part in
        return None
    return None


@rules.predicate
def _is_own(membership: Membership, obj: Any) -> bool:
    """True when ``obj`` is the physician's own record (or the physician takes part in it)."""
    if membership is None or membership.physician_id is None:
        return False
    if obj is None:
        return True  # list views filter to the physician's own rows themselves
    if hasattr(obj, "physician_ids"):
        return membership.physician_id in obj.physician_ids()
    return _physician_id_of(obj) == membership.physician_id


def _role_in(roles: frozenset[str] | set[str]):
    @rules.predicate
    def predicate(membership: Membership, obj: Any = None) -> bool:
        return membership is not None and membership.is_active and membership.role in roles

    return predicate


_physician = _role_in({PHYSICIAN})

# permission -> (roles granted outright, roles granted for their own records only)
PERMISSION_TABLE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # organization
    "org.view": (EVERYONE, frozenset()),
    "org.manage": (frozenset({ADMIN}), frozenset()),
    "audit.view": (frozenset({ADMIN, AUDITOR, COUNSEL, EXECUTIVE}), frozenset()),
    "job.view": (READERS, frozenset({PHYSICIAN})),
    # a record's change history names staff and every edit: not shown to physicians
    "history.view": (READERS, frozenset()),
    # agreements (issue 3)
    "agreement.view": (READERS, frozenset({PHYSICIAN})),
    "agreement.edit": (frozenset({ADMIN}), frozenset()),
    "physician.view": (READERS, frozenset({PHYSICIAN})),
    "physician.edit": (frozenset({ADMIN}), frozenset()),
    "fmv.view": (READERS, frozenset()),
    "fmv.edit": (frozenset({ADMIN}), frozenset()),
    "timelog.view": (READERS, frozenset({PHYSICIAN})),
    "timelog.edit": (frozenset({ADMIN}), frozenset({PHYSICIAN})),
    "timelog.approve": (frozenset({ADMIN}), frozenset()),
    "committee.view": (READERS, frozenset({PHYSICIAN})),
    "committee.edit": (frozenset({ADMIN}), frozenset()),
    "flag.view": (READERS, frozenset()),
    "flag.resolve": (frozenset({ADMIN}), frozenset()),
    "document.view": (READERS, frozenset()),
    "document.upload": (frozenset({ADMIN}), frozenset()),
    # indicators (issue 4)
    "indicator.view": (READERS, frozenset({PHYSICIAN})),
    "indicator.edit": (frozenset({ADMIN}), frozenset()),
    "data.import": (frozenset({ADMIN}), frozenset()),
    # savings (issue 5)
    "savings.view": (READERS, frozenset({PHYSICIAN})),
    "savings.edit": (frozenset({ADMIN}), frozenset()),
    # the opportunity analysis shows every physician's figures: not a physician's page
    "savings.analyse": (READERS, frozenset()),
    # adjudication (issue 6)
    "calculation.view": (READERS, frozenset()),
    "calculation.run": (frozenset({ADMIN}), frozenset()),
    "report.view": (READERS, frozenset()),
    "report.prepare": (frozenset({ADMIN}), frozenset()),
    "report.approve": (frozenset({COUNSEL}), frozenset()),
    "report.authorise": (frozenset({CEO}), frozenset()),
    "statement.view": (READERS, frozenset({PHYSICIAN})),
    "payment.view": (READERS, frozenset()),
    "payment.record": (frozenset({ADMIN}), frozenset()),
    "scenario.run": (frozenset({ADMIN}), frozenset()),
    # people, roles and single sign-on of the organization (comanage.core.people)
    "people.view": (frozenset({ADMIN}), frozenset()),
    "people.manage": (frozenset({ADMIN}), frozenset()),
    "sso.manage": (frozenset({ADMIN}), frozenset()),
}

permissions = rules.RuleSet()
for _name, (_roles, _own_roles) in PERMISSION_TABLE.items():
    predicate = _role_in(_roles)
    if _own_roles:
        predicate = predicate | (_role_in(_own_roles) & _is_own)
    permissions.add_rule(_name, predicate)


class UnknownPermission(KeyError):
    pass


def membership_can(membership: Membership | None, permission: str, obj: Any = None) -> bool:
    """The one place a permission is checked."""
    if permission not in PERMISSION_TABLE:
        raise UnknownPermission(permission)
    if membership is None:
        return False
    return permissions.test_rule(permission, membership, obj)


def roles_with(permission: str) -> tuple[frozenset[str], frozenset[str]]:
    """(roles granted outright, roles granted for their own records only)."""
    return PERMISSION_TABLE[permission]


def is_own_only(membership: Membership | None, permission: str) -> bool:
    """True when the membership holds ``permission`` only for its own records (physicians)."""
    if membership is None:
        return False
    full, own = PERMISSION_TABLE[permission]
    return membership.role not in full and membership.role in own
