"""Writes of agreement data, by what they do: practices, physicians and participation;
agreements and programme years; terms and amendments; the lifecycle; FMV opinions; duties and
time sheets; committee, documents and milestones; compliance flags; the roster import. Every
refusal is a ``ValidationError({field: message})`` naming the field and the reason, raised before
anything is stored (each service runs in one transaction).

Every public name is re-exported here, so ``from agreements import services; services.x(...)``
keeps working; patch a name where it is looked up (its submodule).
"""

from __future__ import annotations

from .agreements import (
    AGREEMENT_FIELDS,
    EDITABLE_WHEN_FROZEN,
    PROGRAMME_YEARS_DEFAULT,
    agreement_create,
    agreement_update,
    programme_year_ranges,
    programme_year_refuse_final_run,
    programme_years_generate,
    programme_years_set,
)
from .common import (
    FROZEN_MESSAGE,
    add_years,
)
from .compliance import (
    LOG_GRACE_DAYS,
    SCAN_KINDS,
    ScanResult,
    compliance_scan,
    flag_clear,
    flag_raise,
    flag_resolve,
)
from .fmv import (
    FMV_FIELDS,
    fmv_opinion_check,
    fmv_opinion_save,
)
from .governance import (
    DEFAULT_PLAN,
    MAX_DOCUMENT_BYTES,
    committee_meeting_save,
    document_upload,
    milestone_save,
    milestones_generate,
)
from .lifecycle import (
    TRANSITIONS,
    activation_blockers,
    agreement_execute,
    agreement_transition,
    fmv_gaps,
)
from .physicians import (
    PHYSICIAN_FIELDS,
    PRACTICE_FIELDS,
    participant_add,
    participation_save,
    physician_save,
    practice_save,
)
from .roster import (
    ROSTER_JOB_KIND,
    roster_import_apply,
    roster_import_discard,
    roster_import_preview,
    roster_import_receive,
    roster_import_start,
)
from .terms import (
    TERMS_FIELDS,
    amendment_create,
    terms_update,
)
from .timesheets import (
    EntryInput,
    duty_save,
    timesheet_approve,
    timesheet_return,
    timesheet_save,
    timesheet_submit,
)

__all__ = [
    "AGREEMENT_FIELDS",
    "DEFAULT_PLAN",
    "EDITABLE_WHEN_FROZEN",
    "EntryInput",
    "FMV_FIELDS",
    "FROZEN_MESSAGE",
    "LOG_GRACE_DAYS",
    "MAX_DOCUMENT_BYTES",
    "PHYSICIAN_FIELDS",
    "PRACTICE_FIELDS",
    "PROGRAMME_YEARS_DEFAULT",
    "ROSTER_JOB_KIND",
    "SCAN_KINDS",
    "ScanResult",
    "TERMS_FIELDS",
    "TRANSITIONS",
    "activation_blockers",
    "add_years",
    "agreement_create",
    "agreement_execute",
    "agreement_transition",
    "agreement_update",
    "amendment_create",
    "committee_meeting_save",
    "compliance_scan",
    "document_upload",
    "duty_save",
    "flag_clear",
    "flag_raise",
    "flag_resolve",
    "fmv_gaps",
    "fmv_opinion_check",
    "fmv_opinion_save",
    "milestone_save",
    "milestones_generate",
    "participant_add",
    "participation_save",
    "physician_save",
    "practice_save",
    "programme_year_ranges",
    "programme_year_refuse_final_run",
    "programme_years_generate",
    "programme_years_set",
    "roster_import_apply",
    "roster_import_discard",
    "roster_import_preview",
    "roster_import_receive",
    "roster_import_start",
    "terms_update",
    "timesheet_approve",
    "timesheet_return",
    "timesheet_save",
    "timesheet_submit",
]
