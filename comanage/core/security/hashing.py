"""Patient case identifiers are pseudonymised per organization before they are stored."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from comanage.core.models import Organization


def case_id_hash(organization: Organization, raw_case_id: str) -> str:
    """HMAC-SHA256 of the case id under the organization's own key, as 64 hex characters.

    The same case id gives the same hash within one organization (so imports can be matched
    and de-duplicated) and an unrelated one in another organization; without the key the hash
    cannot be reversed by trying every plausible case number. Surrounding blanks are ignored.
    """
    key = organization.case_id_key
    if not key:
        raise ValueError("The organization has no case-id key.")
    message = str(raw_case_id).strip()
    if not message:
        raise ValueError("An empty case id cannot be hashed.")
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def case_id_for_storage(organization: Organization, raw_case_id: str) -> str:
    """What to store for a case id: its hash when ``COMANAGE_CASE_ID_HASHING`` is on."""
    if getattr(settings, "COMANAGE_CASE_ID_HASHING", False):
        return case_id_hash(organization, raw_case_id)
    return str(raw_case_id).strip()
