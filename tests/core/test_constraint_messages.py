"""A database constraint a form trips is shown in plain words, never by its code."""

from __future__ import annotations

import pytest
from django_scopes import scope

from agreements.forms import AgreementTermForm
from comanage.core.constraint_messages import CONSTRAINT_MESSAGES, plain_constraint_message
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_term_ending_before_it_starts_is_said_in_words_on_the_end_field(world):
    with scope(organization=world.org):
        agreement = f.AgreementFactory(organization=world.org)
        form = AgreementTermForm(
            instance=agreement,
            data={
                "term_start": "2026-01-01",
                "term_end": "2025-01-01",
                "patient_notice_process": "",
                "quality_safeguards": "",
            },
        )
        assert not form.is_valid()
    shown = str(form.errors)
    assert "Constraint" not in shown and "agreement_term_end_after_start" not in shown
    assert form.errors["term_end"] == ["The term must end after it starts."]


def test_every_check_constraint_has_a_plain_message():
    from django.apps import apps
    from django.db.models import CheckConstraint

    names = {
        c.name
        for model in apps.get_models()
        for c in model._meta.constraints
        if isinstance(c, CheckConstraint)
    }
    assert names <= set(CONSTRAINT_MESSAGES), sorted(names - set(CONSTRAINT_MESSAGES))
    assert plain_constraint_message("Constraint “x_y” is violated.")[1].startswith("These")
