import os, json
import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled
from rest_framework.test import APIClient
from django.test import Client
from comanage.core.models import ApiToken, User
from agreements.models import ProgrammeYear, AgreementKind


@pytest.mark.django_db(transaction=True)
def test_probe():
    call_command("seed_demo", stdout=open(os.devnull, "w"))
    with scopes_disabled():
        admin = User.objects.get(email="administrator@riverside.example")
        _t, raw = ApiToken.issue(user=admin, name="p")
        years = list(ProgrammeYear.objects.filter(agreement__organization__slug="riverside").select_related("agreement"))
        print([(y.pk, y.agreement.kind, y.number, y.agreement.name) for y in years])
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    co = [y for y in years if y.agreement.kind == AgreementKind.CO_MANAGEMENT][0]
    ss = [y for y in years if y.agreement.kind != AgreementKind.CO_MANAGEMENT][0]
    url = "/api/v1/organizations/riverside/adjudication/runs/scenario/"
    for ov in [{"pool": "1e30"}, {"pool": "1e400"}, {"pool": 1e308}, {"weights": "x"},
               {"results": {"k": "x"}}, {"results": {"k": []}}, {"bogus": 1}, {"pool": "NaN"}]:
        r = api.post(url, {"programme_year": co.pk, "overrides": ov}, format="json")
        print("CO", ov, r.status_code, r.content[:200])
    for ov in [{"terms": {"physician_share_pct": "1e400"}}, {"prices": {"X": "-5"}}, {"key_indicators_met": "maybe"}, {"bogus": 1}, {"already_distributed": 1e308}]:
        r = api.post(url, {"programme_year": ss.pk, "overrides": ov}, format="json")
        print("SS", ov, r.status_code, r.content[:200])
    url = "/api/v1/organizations/riverside/savings-calculations/run/"
    for ov in [{"prices": {"X\u0000": "1"}}, {"prices": {"X": "-5"}}]:
        r = api.post(url, {"programme_year": ss.pk, "kind": "scenario", "overrides": ov}, format="json")
        print("RUN", ov, r.status_code, r.content[:300])
    c = Client(raise_request_exception=False)
    c.force_login(admin)
    r = c.post("/account/tokens/", {"revoke": "abc"})
    print("tokens", r.status_code)
    r = c.post(f"/o/riverside/adjudication/years/{co.pk}/what-if/", {"weight__ssi": "1e308"})
    print("whatif", r.status_code)
