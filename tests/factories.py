"""factory_boy factories. Tenant-owned rows are created with scopes disabled (test setup only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django_scopes import scopes_disabled

from agreements import models as am
from comanage.core.models import Membership, Organization, Role, User


class ScopedFactory(factory.django.DjangoModelFactory):
    """Creates tenant-owned rows outside any scope (only tests and seeding may do this)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"General Hospital {n}")
    slug = factory.Sequence(lambda n: f"hospital-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    first_name = "Pat"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.django.Password("correct horse battery")


def _valid_npi(n: int) -> str:
    from agreements.validators import npi_is_valid

    base = f"1{n:08d}"[-9:]
    for check in range(10):
        if npi_is_valid(base + str(check)):
            return base + str(check)
    raise AssertionError("unreachable")


class PracticeFactory(ScopedFactory):
    class Meta:
        model = am.Practice

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Heart Associates {n}")


class PhysicianFactory(ScopedFactory):
    class Meta:
        model = am.Physician

    organization = factory.SubFactory(OrganizationFactory)
    npi = factory.Sequence(lambda n: _valid_npi(n + 100))
    first_name = "Alex"
    last_name = factory.Sequence(lambda n: f"Doctor{n:03d}")
    specialty = "Cardiology"


class MembershipFactory(ScopedFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ADMINISTRATOR


class AgreementFactory(ScopedFactory):
    class Meta:
        model = am.Agreement

    organization = factory.SubFactory(OrganizationFactory)
    kind = am.AgreementKind.CO_MANAGEMENT
    name = factory.Sequence(lambda n: f"Cardiovascular co-management {n}")
    practice = factory.SubFactory(
        PracticeFactory, organization=factory.SelfAttribute("..organization")
    )
    service_line = am.ServiceLine.CARDIOVASCULAR
    term_start = dt.date(2025, 1, 1)
    term_end = dt.date(2026, 12, 31)


class TermsFactory(ScopedFactory):
    class Meta:
        model = am.AgreementTerms

    agreement = factory.SubFactory(AgreementFactory)
    organization = factory.SelfAttribute("agreement.organization")
    version = 1
    effective_from = factory.SelfAttribute("agreement.term_start")
    annual_fixed_fee = Decimal("400000.00")
    incentive_pool = Decimal("400000.00")
    admin_fee_monthly = Decimal("3000.00")
    distribution_cap = Decimal("1000000.00")


class ProgrammeYearFactory(ScopedFactory):
    class Meta:
        model = am.ProgrammeYear

    agreement = factory.SubFactory(AgreementFactory)
    organization = factory.SelfAttribute("agreement.organization")
    number = 1
    start = dt.date(2025, 1, 1)
    end = dt.date(2025, 12, 31)


class ParticipationFactory(ScopedFactory):
    class Meta:
        model = am.Participation

    agreement = factory.SubFactory(AgreementFactory)
    organization = factory.SelfAttribute("agreement.organization")
    physician = factory.SubFactory(
        PhysicianFactory, organization=factory.SelfAttribute("..organization")
    )
    join_date = dt.date(2025, 1, 1)


class FMVOpinionFactory(ScopedFactory):
    class Meta:
        model = am.FMVOpinion

    agreement = factory.SubFactory(AgreementFactory)
    organization = factory.SelfAttribute("agreement.organization")
    valuator = "Valuation Partners LLC"
    issue_date = dt.date(2024, 11, 1)
    effective_start = dt.date(2025, 1, 1)
    effective_end = dt.date(2026, 12, 31)
    total_max_annual = Decimal("800000.00")
    fixed_mode = am.FixedFeeMode.HOURLY
    fixed_hours = Decimal("1600")
    hourly_rate = Decimal("250.00")
    max_incentive = Decimal("400000.00")
    rate_p25 = Decimal("180.00")
    rate_p50 = Decimal("220.00")
    rate_p75 = Decimal("260.00")
    rate_p90 = Decimal("310.00")


class DutyFactory(ScopedFactory):
    class Meta:
        model = am.ManagementDuty

    agreement = factory.SubFactory(AgreementFactory)
    organization = factory.SelfAttribute("agreement.organization")
    name = factory.Sequence(lambda n: f"Quality committee leadership {n}")
    required_monthly_hours = Decimal("40")
    max_monthly_hours = Decimal("80")
