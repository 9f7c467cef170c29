"""Security: single sign-on (OIDC per organization), two-factor authentication (TOTP) and
step-up at signing, case-id hashing, backups.

What apps use:

- ``case_id_hash(organization, raw_case_id)`` when ``settings.COMANAGE_CASE_ID_HASHING`` is on;
- ``require_recent_otp(request)`` / ``@otp_step_up()`` in views that sign (counsel's approval,
  the CEO's authorisation).
"""

from .hashing import (
    case_id_for_storage,
    case_id_hash,
    case_id_hashing_enabled,
    case_ids_for_storage,
)
from .otp import (
    device_code_valid,
    otp_step_up,
    require_recent_otp,
    two_factor_enabled,
    user_requires_2fa,
)

__all__ = [
    "case_id_for_storage",
    "case_id_hash",
    "case_id_hashing_enabled",
    "case_ids_for_storage",
    "device_code_valid",
    "otp_step_up",
    "require_recent_otp",
    "two_factor_enabled",
    "user_requires_2fa",
]
