"""Form helpers every app's pages share."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def apply_errors(form: forms.BaseForm, exc: ValidationError, *, name_others: bool = False) -> None:
    """A service's refusal shown on the form: next to the field it names, else above the form
    (the same words the API returns for the same refusal). With ``name_others``, a message about
    something the form has no field for (a criterion inside a JSON document, say) keeps that
    name in front of it above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, messages in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, messages)
        elif name_others and field != NON_FIELD_ERRORS:
            form.add_error(None, [f"{field}: {message}" for message in messages])
        else:
            form.add_error(None, messages)
