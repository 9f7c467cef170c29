"""Patient case identifiers are pseudonymised per organization before they are stored."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

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


def case_id_hashing_enabled() -> bool:
    return bool(getattr(settings, "COMANAGE_CASE_ID_HASHING", False))


def case_ids_for_storage(organization: Organization, case_ids: Any) -> Any:
    """A whole column of case ids as they are to be stored (an Arrow array or a pandas Series
    of text): unchanged, or hashed when ``COMANAGE_CASE_ID_HASHING`` is on. Each distinct id is
    hashed once (a case's rows repeat its id), so a million rows cost a few hundred thousand
    HMACs at most."""
    if not case_id_hashing_enabled():
        return case_ids
    import pyarrow as pa
    import pyarrow.compute as pc

    as_series = not isinstance(case_ids, pa.Array | pa.ChunkedArray)
    array = pa.array(case_ids, type=pa.string(), from_pandas=True) if as_series else case_ids
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = pc.dictionary_encode(pc.utf8_trim_whitespace(array))
    hashed = pa.array(
        [case_id_hash(organization, v) for v in encoded.dictionary.to_pylist()], type=pa.string()
    )
    result = pc.take(hashed, encoded.indices)
    if as_series:
        import pandas as pd

        return pd.Series(result.to_pylist(), index=getattr(case_ids, "index", None), dtype="string")
    return result
