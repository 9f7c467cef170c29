"""Forms speak plainly: labels in words, a real empty choice."""

from __future__ import annotations

import pytest
from django_scopes import scopes_disabled

from agreements.forms import AgreementCreateForm, ParticipationForm

pytestmark = pytest.mark.django_db


def test_labels_and_empty_choices_are_words_not_field_names():
    with scopes_disabled():
        parties = AgreementCreateForm().as_div()
        participation = ParticipationForm().as_div()
    for html in (parties, participation):
        assert "---------" not in html
        assert "Choose…" in html
    assert "Other service line" in parties and "Service line custom" not in parties
    assert "Ownership (%)" in participation and "Ownership pct" not in participation
