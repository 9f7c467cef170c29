"""Forms of the People, SSO and installation pages; they validate shape only, the services
keep the rules."""

from __future__ import annotations

import zoneinfo

from django import forms

from comanage.core.forms import apply_errors as apply_errors  # re-exported for the people pages
from comanage.core.models import Role


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices)
    npi = forms.CharField(
        label="Physician's NPI",
        max_length=10,
        required=False,
        help_text="For the physician role: links the person to their physician record.",
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    npi = forms.CharField(
        label="Physician's NPI",
        max_length=10,
        required=False,
        help_text="For the physician role (empty keeps the current link).",
    )


class SSOForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Button label",
        help_text="Shown on the sign-in button.",
    )
    issuer = forms.URLField(label="Issuer URL", assume_scheme="https")
    client_id = forms.CharField(max_length=200, label="Client id")
    client_secret = forms.CharField(
        max_length=500,
        required=False,
        label="Client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never shown again. Leave empty to keep the stored secret.",
    )
    enabled = forms.BooleanField(required=False, initial=True)
    email_domains = forms.CharField(
        max_length=500,
        required=False,
        label="E-mail domains",
        help_text="Comma-separated, e.g. riverside.org, rmc.org",
    )


class AcceptForm(forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        label="Password (again)", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=60, help_text="In the organization's addresses: /o/<slug>/")
    short_name = forms.CharField(max_length=40, required=False)
    time_zone = forms.ChoiceField(choices=[], initial="America/New_York")
    email_domains = forms.CharField(max_length=500, required=False, label="E-mail domains")
    restrict_to_domains = forms.BooleanField(
        required=False, label="Invite only addresses of these domains"
    )
    primary_colour = forms.CharField(max_length=7, required=False, initial="#1f4e79")
    accent_colour = forms.CharField(max_length=7, required=False, initial="#2a9d8f")
    admin_email = forms.EmailField(label="First administrator's e-mail address")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(z, z) for z in zones]


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    short_name = forms.CharField(
        max_length=40, required=False, help_text="Used where space is short (menus, PDF footers)."
    )
    primary_colour = forms.CharField(
        max_length=7, label="Main colour", help_text="Such as #1f4e79."
    )
    accent_colour = forms.CharField(
        max_length=7, label="Accent colour", help_text="Such as #2a9d8f."
    )
    time_zone = forms.ChoiceField(
        choices=[], help_text="Every date on pages and PDFs is shown in this time zone."
    )
    email_domains = forms.CharField(
        max_length=500,
        required=False,
        label="E-mail domains",
        help_text="Comma-separated, e.g. riverside.org, rmc.org",
    )
    restrict_to_domains = forms.BooleanField(
        required=False, label="Invite only addresses of these domains"
    )
    logo = forms.FileField(
        required=False,
        label="Logo",
        help_text="PNG or JPEG, at most 512 KB and 2000×2000 pixels. Shown on pages and PDFs.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(z, z.replace("_", " ")) for z in zones]
