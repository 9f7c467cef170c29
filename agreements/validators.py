"""Validators for agreement data."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def npi_is_valid(npi: str) -> bool:
    """NPI check digit: Luhn over the 9-digit base prefixed with the card issuer code 80840."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = [int(d) for d in "80840" + npi[:9]]
    total = 0
    # Double every second digit from the right of the 14-digit payload.
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    check = (10 - total % 10) % 10
    return check == int(npi[9])


def validate_npi(value: str) -> None:
    if len(value) != 10 or not value.isdigit():
        raise ValidationError("An NPI is exactly 10 digits.", code="npi_format")
    if not npi_is_valid(value):
        raise ValidationError("This NPI's check digit is wrong (NPI Luhn rule).", code="npi_check")
