"""A physician sees only their own data: the API's serializers narrow what they return.

The view sets already narrow *which rows* a physician gets (``filter_own``). This module narrows
*what is inside* a row a physician may see, as the physician's web pages do: an agreement-level
record (a savings calculation, a committee meeting) keeps its agreement-level figures but loses
every other physician's line, name, NPI, dates and safeguard counts.

``PhysicianNarrowing`` is a serializer mixin: for a physician viewer (a physician membership on
the request) its ``to_representation`` passes the output through ``narrow_for_physician``, which
walks the JSON and

* drops, from every list, the objects that belong to another physician (a ``physician_id`` /
  ``physician`` / ``participant_physician_id`` key, or a ``subject`` of ``physician:<id>``);
* keeps only the viewer's own id in lists of physician ids (``physicians_present``...).

Serializers with data that names physicians in free text add their own rules
(``narrow_fields``).
"""

from __future__ import annotations

from typing import Any

from comanage.core.models import Role

#: Keys that name the physician an object belongs to.
OWNER_KEYS = ("physician_id", "physician", "participant_physician_id")
#: Keys holding a list of physician ids.
ID_LIST_KEYS = ("physicians_present", "physician_ids", "physicians_absent")


def physician_viewer(context: dict[str, Any] | None) -> int | None:
    """The physician id of the viewer when the viewer is a physician; ``None`` otherwise.

    Fails closed: a physician membership whose physician is unknown narrows to nobody (-1).
    """
    request = (context or {}).get("request")
    membership = getattr(request, "membership", None) if request is not None else None
    if membership is None and request is not None:
        membership = getattr(getattr(request, "_request", None), "membership", None)
    if membership is None or membership.role != Role.PHYSICIAN:
        return None
    return membership.physician_id if membership.physician_id is not None else -1


def _owner(item: dict[str, Any]) -> str | None:
    for key in OWNER_KEYS:
        if key in item and item[key] is not None and not isinstance(item[key], dict | list):
            return str(item[key])
    subject = item.get("subject")
    if isinstance(subject, str) and subject.startswith("physician:"):
        return subject.partition(":")[2]
    if isinstance(subject, str) and subject.startswith("physician"):
        # About several physicians at once (a rule note naming who got the leftover cents):
        # nobody's own, so a physician viewer never sees it, as on the web page.
        return ""
    return None


def narrow_for_physician(value: Any, physician_id: int) -> Any:
    """``value`` (JSON-like) without what belongs to physicians other than ``physician_id``."""
    own = str(physician_id)
    if isinstance(value, dict):
        narrowed: dict[Any, Any] = {}
        for key, item in value.items():
            if key in ID_LIST_KEYS and isinstance(item, list | tuple):
                narrowed[key] = [i for i in item if str(getattr(i, "pk", i)) == own]
            else:
                narrowed[key] = narrow_for_physician(item, physician_id)
        return narrowed
    if isinstance(value, list | tuple):
        kept = []
        for item in value:
            if isinstance(item, dict):
                owner = _owner(item)
                if owner is not None and owner != own:
                    continue
            kept.append(narrow_for_physician(item, physician_id))
        return kept
    return value


class PhysicianNarrowing:
    """Serializer mixin: a physician viewer gets the representation narrowed to their own.

    ``narrow_fields`` maps a field name to a function ``(value, physician_id) -> value`` for
    data the generic walk cannot recognise (free text naming physicians, say).
    """

    narrow_fields: dict[str, Any] = {}

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        physician_id = physician_viewer(getattr(self, "context", None))
        if physician_id is None:
            return data
        narrowed = dict(narrow_for_physician(dict(data), physician_id))
        for name, rule in self.narrow_fields.items():
            if name in narrowed:
                narrowed[name] = rule(narrowed[name], physician_id)
        return narrowed
