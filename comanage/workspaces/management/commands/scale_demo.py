"""Scale the demo for load tests: copy an organization's agreements (with their terms,
programme years, participants, duties, FMV opinions, time sheets, open flags, indicator
definitions and results, savings opportunities and stored calculations) until it has N.

Copies are data for benchmarks and query-count tests, not business events: rows are copied as
they are (no services, no history), and a copy is named "<original> #<n>".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_scopes import scope

from agreements.models import (
    Agreement,
    AgreementTerms,
    ComplianceFlag,
    FMVOpinion,
    ManagementDuty,
    Participation,
    ProgrammeYear,
    TimeEntry,
    TimeSheet,
)
from comanage.core.models import Organization
from indicators.models import IndicatorDefinition, IndicatorResult
from savings.models import SavingsCalculation, SavingsOpportunity


def _copy(obj: Any, **changes: Any) -> Any:
    old_pk = obj.pk
    obj.pk = None
    obj.id = None
    obj._state.adding = True
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.save()
    obj._copied_from = old_pk
    return obj


def agreement_clone(*, agreement: Agreement, name: str) -> Agreement:
    """A full copy of ``agreement`` under a new name (run inside the organization's scope)."""
    source_pk = agreement.pk
    source = Agreement.objects.get(pk=source_pk)
    copy = _copy(source, name=name)
    terms = {}
    for t in AgreementTerms.objects.filter(agreement_id=source_pk):
        old = t.pk
        terms[old] = _copy(t, agreement=copy)
    # Old year id -> its copy; a row without a year (a None id) finds none.
    years: dict[int | None, ProgrammeYear] = {}
    for y in ProgrammeYear.objects.filter(agreement_id=source_pk):
        old = y.pk
        years[old] = _copy(y, agreement=copy)
    for p in Participation.objects.filter(agreement_id=source_pk):
        _copy(p, agreement=copy)
    for f in FMVOpinion.objects.filter(agreement_id=source_pk):
        _copy(f, agreement=copy)
    duties = {}
    for duty in ManagementDuty.objects.filter(agreement_id=source_pk):
        old = duty.pk
        duties[old] = _copy(duty, agreement=copy)
    entries = list(TimeEntry.objects.filter(timesheet__agreement_id=source_pk))
    sheets = {}
    for s in TimeSheet.objects.filter(agreement_id=source_pk):
        old = s.pk
        sheets[old] = _copy(s, agreement=copy)
    TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                organization_id=e.organization_id,
                timesheet=sheets[e.timesheet_id],
                duty=duties[e.duty_id],
                hours=e.hours,
                description=e.description,
            )
            for e in entries
        ]
    )
    for flag in ComplianceFlag.objects.filter(agreement_id=source_pk, resolved_at__isnull=True):
        _copy(
            flag,
            agreement=copy,
            key=f"{flag.key}:copy{copy.pk}",
            programme_year=years.get(flag.programme_year_id),
        )
    definitions = {}
    for d in IndicatorDefinition.objects.filter(agreement_id=source_pk):
        old = d.pk
        definitions[old] = _copy(d, agreement=copy, terms=terms[d.terms_id])
    for r in IndicatorResult.objects.filter(definition__agreement_id=source_pk, is_current=True):
        _copy(
            r,
            definition=definitions[r.definition_id],
            programme_year=years[r.programme_year_id],
            case_import=None,
            previous=None,
        )
    for o in SavingsOpportunity.objects.filter(agreement_id=source_pk):
        _copy(o, agreement=copy, effective_from_year=years.get(o.effective_from_year_id))
    for c in SavingsCalculation.objects.filter(agreement_id=source_pk):
        _copy(c, agreement=copy, programme_year=years[c.programme_year_id])
    return copy


def scale_organization(*, organization: Organization, agreements: int) -> int:
    """Copy the organization's agreements round-robin until it has ``agreements``; returns
    how many were added."""
    with scope(organization=organization), transaction.atomic():
        originals = list(Agreement.objects.exclude(name__contains=" #").order_by("pk"))
        count = Agreement.objects.count()
        added = 0
        while originals and count < agreements:
            source = originals[added % len(originals)]
            agreement_clone(agreement=source, name=f"{source.name} #{count + 1}")
            count += 1
            added += 1
    return added


class Command(BaseCommand):
    help = "Copy an organization's demo agreements until it has N (for load tests)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="riverside")
        parser.add_argument("--agreements", type=int, default=20)
        parser.add_argument("--force-production", action="store_true")

    def handle(self, *args, **options) -> None:
        from comanage.core.management.commands.seed_demo import refuse_in_production

        refuse_in_production(
            "scale_demo",
            options["force_production"],
            "it copies an organization's agreements into that organization",
        )
        organization = Organization.objects.get(slug=options["organization"])
        added = scale_organization(organization=organization, agreements=options["agreements"])
        self.stdout.write(f"{organization.name}: {added} agreement(s) added.")
