"""Writes of the savings app (spec section 4), by what they do: opportunities, data imports, the
calculation, safeguard flags and termination for cause from a flag, the design-phase analysis,
and the item master.

``calculation.savings_for_year`` gathers a programme year's inputs from the records and calls the
pure engine (:mod:`savings.engine`); everything else stores or moves records. Every name is
re-exported here, so ``from savings import services; services.x(...)`` keeps working; patch a
name where it is looked up (its submodule).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from comanage.core.jobs import DuplicateJob

from .. import engine
from .analysis import (
    opportunity_analysis_run,
)
from .calculation import (
    CALCULATION_JOB_KIND,
    OVERRIDE_KEYS,
    TERM_FIELDS,
    SavingsComputation,
    savings_calculation_run,
    savings_calculation_start,
    savings_for_year,
)
from .imports import (
    HEAD_JOB_KIND,
    IMPORT_JOB_KIND,
    DuplicateUpload,
    ImportNotDiscardable,
    ImportRefused,
    data_import_apply,
    data_import_discard,
    data_import_from_path,
    data_import_head_read,
    data_import_map,
    data_import_mapping_step,
    data_import_mark_failed,
    data_import_preview,
    data_import_receive,
    data_import_start,
)
from .items import (
    ITEM_IMPORT_JOB_KIND,
    item_import_apply,
    item_import_discard,
    item_import_preview,
    item_import_receive,
    item_import_start,
    opportunity_items_assign,
    opportunity_items_unassign,
)
from .opportunities import (
    distribution_cap_proposed,
    opportunity_accept,
    opportunity_create,
    opportunity_delete,
    opportunity_propose_from_finding,
    opportunity_update,
)
from .safeguards import (
    SAFEGUARD_KINDS,
    participation_terminate_for_cause,
    safeguard_flags_raise,
)

__all__ = [
    "DuplicateJob",
    "ValidationError",
    "engine",
    "CALCULATION_JOB_KIND",
    "DuplicateUpload",
    "HEAD_JOB_KIND",
    "IMPORT_JOB_KIND",
    "ITEM_IMPORT_JOB_KIND",
    "ImportNotDiscardable",
    "ImportRefused",
    "OVERRIDE_KEYS",
    "SAFEGUARD_KINDS",
    "SavingsComputation",
    "TERM_FIELDS",
    "data_import_apply",
    "data_import_discard",
    "data_import_from_path",
    "data_import_head_read",
    "data_import_map",
    "data_import_mapping_step",
    "data_import_mark_failed",
    "data_import_preview",
    "data_import_receive",
    "data_import_start",
    "distribution_cap_proposed",
    "item_import_apply",
    "item_import_discard",
    "item_import_preview",
    "item_import_receive",
    "item_import_start",
    "opportunity_accept",
    "opportunity_analysis_run",
    "opportunity_create",
    "opportunity_delete",
    "opportunity_items_assign",
    "opportunity_items_unassign",
    "opportunity_propose_from_finding",
    "opportunity_update",
    "participation_terminate_for_cause",
    "safeguard_flags_raise",
    "savings_calculation_run",
    "savings_calculation_start",
    "savings_for_year",
]
