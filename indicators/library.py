"""The global library of reusable indicator templates (no tenant data). Loaded by a data
migration; an administrator copies a template into an agreement and adjusts the copy."""

from __future__ import annotations

ADULT_JOINT = [
    {"field": "age", "op": ">=", "value": 18},
    {"field": "procedure", "op": "in", "value": ["TKA", "THA"]},
]

TEMPLATES: list[dict] = [
    {
        "key": "ssi_joint",
        "name": "Surgical site infection after hip or knee replacement",
        "description": "Deep or organ-space SSI within 90 days of elective primary total hip "
        "or knee arthroplasty (NHSN definitions).",
        "source": "CDC NHSN procedure-associated SSI (HPRO/KPRO)",
        "kind": "proportion",
        "unit": "%",
        "direction": "lower_is_better",
        "populations": {
            "initial_population": {"all": ADULT_JOINT},
            "denominator_exclusions": {"field": "infection_present_at_surgery", "op": "is_true"},
            "numerator": {"field": "ssi_within_90_days", "op": "is_true"},
        },
        "fields": {
            "age": "number",
            "procedure": "string",
            "discharge_date": "date",
            "infection_present_at_surgery": "boolean",
            "ssi_within_90_days": "boolean",
        },
        "date_field": "discharge_date",
        "numerator_definition": "Cases with a deep or organ-space SSI within 90 days.",
        "denominator_definition": "Adult elective primary TKA/THA, excluding infection present "
        "at the time of surgery.",
        "threshold": "1.8",
        "target": "1.4",
        "stretch": "1.0",
        "suggested_weight": "25",
    },
    {
        "key": "median_los",
        "name": "Median length of stay, joint replacement",
        "description": "Median inpatient days for elective primary hip or knee replacement.",
        "source": "Hospital discharge abstract",
        "kind": "continuous_variable",
        "unit": "days",
        "direction": "lower_is_better",
        "populations": {
            "initial_population": {"all": ADULT_JOINT},
            "measure_population": {"field": "admission_type", "op": "=", "value": "elective"},
            "measure_population_exclusions": {
                "field": "discharge_disposition",
                "op": "=",
                "value": "expired",
            },
        },
        "fields": {
            "age": "number",
            "procedure": "string",
            "admission_type": "string",
            "discharge_disposition": "string",
            "discharge_date": "date",
            "length_of_stay_days": "number",
        },
        "date_field": "discharge_date",
        "observation_field": "length_of_stay_days",
        "aggregate": "median",
        "numerator_definition": "Median length of stay, in days.",
        "denominator_definition": "Adult elective TKA/THA discharged alive.",
        "threshold": "2.2",
        "target": "2.0",
        "stretch": "1.8",
        "suggested_weight": "20",
    },
    {
        "key": "vte_prophylaxis",
        "name": "VTE prophylaxis by post-operative day 1",
        "description": "Elective hip or knee replacement patients who received VTE prophylaxis "
        "by the end of post-operative day 1 (spec example D).",
        "source": "SCIP-VTE-2 (adapted)",
        "kind": "proportion",
        "unit": "%",
        "direction": "higher_is_better",
        "populations": {
            "initial_population": {
                "all": ADULT_JOINT + [{"field": "admission_type", "op": "=", "value": "elective"}]
            },
            "denominator_exclusions": {
                "any": [
                    {"field": "comfort_care_only", "op": "is_true"},
                    {"field": "anticoagulated_on_admission", "op": "is_true"},
                ]
            },
            "numerator": {"field": "prophylaxis_by_pod1", "op": "is_true"},
            "denominator_exceptions": {"field": "medical_reason_no_prophylaxis", "op": "not_null"},
        },
        "fields": {
            "age": "number",
            "procedure": "string",
            "admission_type": "string",
            "discharge_date": "date",
            "comfort_care_only": "boolean",
            "anticoagulated_on_admission": "boolean",
            "prophylaxis_by_pod1": "boolean",
            "medical_reason_no_prophylaxis": "string",
        },
        "date_field": "discharge_date",
        "numerator_definition": "Prophylaxis given by the end of post-operative day 1.",
        "denominator_definition": "Adults, elective TKA/THA, excluding comfort care only and "
        "patients already anticoagulated; a documented medical "
        "reason removes a case only when prophylaxis was not given.",
        "minimum_denominator": 10,
        "threshold": "90",
        "target": "95",
        "stretch": "98",
        "suggested_weight": "20",
    },
    {
        "key": "readmission_30d",
        "name": "30-day all-cause readmission",
        "description": "Unplanned readmission to any acute-care hospital within 30 days of "
        "discharge.",
        "source": "CMS Hospital-Wide Readmission (adapted)",
        "kind": "proportion",
        "unit": "%",
        "direction": "lower_is_better",
        "populations": {
            "initial_population": {
                "all": [
                    {"field": "age", "op": ">=", "value": 18},
                    {"field": "discharge_disposition", "op": "!=", "value": "expired"},
                ]
            },
            "denominator_exclusions": {"field": "planned_readmission", "op": "is_true"},
            "numerator": {
                "field": "readmit_date",
                "op": "within_days",
                "value": 30,
                "of": "discharge_date",
            },
        },
        "fields": {
            "age": "number",
            "discharge_disposition": "string",
            "discharge_date": "date",
            "readmit_date": "date",
            "planned_readmission": "boolean",
        },
        "date_field": "discharge_date",
        "numerator_definition": "Readmitted within 30 days of discharge.",
        "denominator_definition": "Adult discharges alive, excluding planned readmissions.",
        "minimum_denominator": 25,
        "threshold": "8",
        "target": "6",
        "stretch": "4",
        "suggested_weight": "15",
        "is_key_quality_indicator": True,
    },
    {
        "key": "experience_top_box",
        "name": "Patient experience top-box",
        "description": "Share of returned surveys rating the hospital 9 or 10 out of 10.",
        "source": "HCAHPS overall rating (top box)",
        "kind": "proportion",
        "unit": "%",
        "direction": "higher_is_better",
        "populations": {
            "initial_population": {"field": "survey_returned", "op": "is_true"},
            "denominator": {"field": "overall_rating", "op": "not_null"},
            "numerator": {"field": "overall_rating", "op": ">=", "value": 9},
        },
        "fields": {
            "survey_returned": "boolean",
            "overall_rating": "number",
            "discharge_date": "date",
        },
        "date_field": "discharge_date",
        "numerator_definition": "Overall rating 9 or 10.",
        "denominator_definition": "Returned surveys with an overall rating.",
        "threshold": "75",
        "target": "80",
        "stretch": "85",
        "suggested_weight": "20",
    },
    {
        "key": "door_to_balloon",
        "name": "Median door-to-balloon time",
        "description": "Minutes from hospital arrival to first device for STEMI patients "
        "receiving primary PCI.",
        "source": "ACC NCDR CathPCI",
        "kind": "continuous_variable",
        "unit": "min",
        "direction": "lower_is_better",
        "populations": {
            "initial_population": {
                "all": [
                    {"field": "stemi", "op": "is_true"},
                    {"field": "primary_pci", "op": "is_true"},
                ]
            },
            "measure_population_exclusions": {"field": "non_system_delay_reason", "op": "not_null"},
        },
        "fields": {
            "stemi": "boolean",
            "primary_pci": "boolean",
            "non_system_delay_reason": "string",
            "arrival_date": "date",
            "door_to_balloon_minutes": "number",
        },
        "date_field": "arrival_date",
        "observation_field": "door_to_balloon_minutes",
        "aggregate": "median",
        "numerator_definition": "Median door-to-balloon time, in minutes.",
        "denominator_definition": "STEMI with primary PCI, excluding non-system delays.",
        "threshold": "90",
        "target": "75",
        "stretch": "60",
        "suggested_weight": "20",
    },
]


def templates_load(template_model) -> int:
    """Create or refresh the library (by key); used by the data migration and tests."""
    from decimal import Decimal

    for spec in TEMPLATES:
        values = dict(spec)
        key = values.pop("key")
        for name in ("threshold", "target", "stretch", "suggested_weight"):
            values[name] = Decimal(values[name])
        template_model.objects.update_or_create(key=key, defaults=values)
    return len(TEMPLATES)
