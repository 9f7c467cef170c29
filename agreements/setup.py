"""The guided agreement setup: its steps, what each needs before activation, and the steps the
apps above this one contribute (indicators, savings opportunities).

Agreements sits below indicators and savings (pyproject's import-linter layers), so it cannot
import their forms or services. They register a ``ContributedStep`` from their ``AppConfig.ready``
instead; the setup renders its form and calls its save, which goes through their services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms

from . import services
from .models import Agreement, AgreementKind, AgreementStatus


@dataclass(frozen=True)
class ContributedStep:
    """A setup step owned by another app."""

    key: str
    label: str
    kind: str  # the agreement kind it applies to
    after: str  # the key of the step it follows
    intro: str
    form: Callable[[Agreement, Any], forms.Form]  # (agreement, POST data or None)
    save: Callable[[Agreement, dict[str, Any], Any], Any]  # (agreement, cleaned data, user)
    items: Callable[[Agreement], list[str]]  # what is there, one line each
    missing: Callable[[Agreement], list[str]]  # what is still needed, in plain words
    submit: str = "Add"


CONTRIBUTED: dict[str, ContributedStep] = {}


def setup_step_register(step: ContributedStep) -> None:
    CONTRIBUTED[step.key] = step


@dataclass
class StepState:
    key: str
    label: str
    required: bool
    missing: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.missing


# (key, label, kinds it applies to or None for all, required before activation)
BASE_STEPS: list[tuple[str, str, str | None, bool]] = [
    ("parties", "Parties", None, True),
    ("term", "Term", None, True),
    ("fmv", "FMV opinion", None, True),
    ("policies", "Fees and policies", None, True),
    ("duties", "Management duties", AgreementKind.CO_MANAGEMENT, True),
    ("physicians", "Participating physicians", None, True),
    ("committee", "Committee and timeline", None, False),
    ("documents", "Documents", None, False),
    ("execute", "Sign and activate", None, True),
]

# Steps whose form adds one row: after saving, the page stays on the step to add another.
MULTI_ROW = {"fmv", "duties", "physicians", "documents"}


def setup_steps(*, agreement: Agreement) -> list[tuple[str, str]]:
    """The (key, label) of the steps that apply to this agreement, in order."""
    steps = [(k, label) for k, label, kind, _ in BASE_STEPS if kind in (None, agreement.kind)]
    for extra in CONTRIBUTED.values():
        if extra.kind != agreement.kind:
            continue
        keys = [k for k, _ in steps]
        position = keys.index(extra.after) + 1 if extra.after in keys else len(steps) - 1
        steps.insert(position, (extra.key, extra.label))
    return steps


def _policies_missing(agreement: Agreement) -> list[str]:
    terms = agreement.terms.order_by("version").first()
    if terms is None:
        return ["The agreement has no terms."]
    if agreement.kind == AgreementKind.CO_MANAGEMENT:
        gaps = []
        if terms.annual_fixed_fee is None:
            gaps.append("Enter the annual fixed fee.")
        if terms.incentive_pool is None:
            gaps.append("Enter the incentive pool.")
        return gaps
    if terms.distribution_cap is None:
        return ["Enter the distribution cap (the total savings identified at signing)."]
    return []


def _fmv_missing(agreement: Agreement) -> list[str]:
    if not agreement.fmv_opinions.exists():
        return ["Add the FMV opinion."]
    return [
        f"No FMV opinion covers programme year {y.number} "
        f"({y.start:%b %-d, %Y} – {y.end:%b %-d, %Y})."
        for y in services.fmv_gaps(agreement=agreement)
    ]


def _execute_missing(agreement: Agreement) -> list[str]:
    if agreement.status == AgreementStatus.ACTIVE:
        return []
    if agreement.status == AgreementStatus.EXECUTED:
        return ["Activate the agreement."]
    return ["Record the signing, then activate."]


def _unless(done: Callable[[Agreement], bool], need: str) -> Callable[[Agreement], list[str]]:
    """A step that is done when ``done`` holds, and otherwise needs ``need``."""
    return lambda agreement: [] if done(agreement) else [need]


# What each base step still needs: one check per step.
_MISSING: dict[str, Callable[[Agreement], list[str]]] = {
    "parties": _unless(lambda a: bool(a.practice_id and a.name), "Name the parties."),
    "term": _unless(lambda a: a.programme_years.exists(), "Set the term."),
    "fmv": _fmv_missing,
    "policies": _policies_missing,
    "duties": _unless(lambda a: a.duties.exists(), "Add at least one management duty."),
    "physicians": _unless(lambda a: a.participations.exists(), "Add the participating physicians."),
    "committee": _unless(lambda a: a.milestones.exists(), "Plan the timeline (optional)."),
    "documents": _unless(lambda a: a.documents.exists(), "Upload the signed agreement (optional)."),
    "execute": _execute_missing,
}


def setup_missing(*, agreement: Agreement, key: str) -> list[str]:
    """What a step still needs, in plain words; empty when the step is done."""
    if key in CONTRIBUTED:
        return CONTRIBUTED[key].missing(agreement)
    return _MISSING[key](agreement)


def setup_checklist(*, agreement: Agreement) -> list[StepState]:
    required = {k: r for k, _, _, r in BASE_STEPS}
    return [
        StepState(
            key=key,
            label=label,
            required=required.get(key, True),
            missing=setup_missing(agreement=agreement, key=key),
        )
        for key, label in setup_steps(agreement=agreement)
    ]


def setup_resume_step(*, agreement: Agreement, last: str | None) -> str:
    """Where "Continue" takes the administrator: the step they were last on (it is kept in
    their session), else the first required step not done (the last step when all are)."""
    checklist = setup_checklist(agreement=agreement)
    keys = [s.key for s in checklist]
    if last is not None and last in keys:
        return last
    for state in checklist:
        if not state.done and state.required:
            return state.key
    return keys[-1]
