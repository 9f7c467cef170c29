import pytest
from django.apps import apps
from django_scopes import ScopeError, scope

from agreements.models import Physician
from comanage.core.tenancy import TenantModel, TenantOwned


def tenant_models():
    return [
        m
        for m in apps.get_models()
        if issubclass(m, TenantOwned) and not m.__name__.startswith("Historical")
    ]


def test_every_tenant_owned_model_is_scoped_and_fails_closed(world):
    models = tenant_models()
    assert len(models) >= 15
    for model in models:
        with pytest.raises(ScopeError):
            list(model.objects.all())


def test_every_domain_model_keeps_an_audit_history(world):
    for model in tenant_models():
        if issubclass(model, TenantModel):
            assert hasattr(model, "history"), model


def test_a_scoped_query_sees_only_its_own_organization(world):
    from tests.factories import PhysicianFactory

    PhysicianFactory(organization=world.other_org, last_name="Elsewhere")
    with scope(organization=world.org):
        names = set(Physician.objects.values_list("last_name", flat=True))
    assert "Elsewhere" not in names
    assert {"Adams", "Baker"} <= names


def test_an_unknown_organization_is_a_404(world):
    response = world.client("administrator").get("/o/no-such-place/")
    assert response.status_code == 404


def test_an_outsider_gets_404_on_another_organization(world):
    response = world.client("outsider").get(f"/o/{world.org.slug}/")
    assert response.status_code == 404


def test_a_member_reaches_their_organization(world):
    response = world.client("executive").get(f"/o/{world.org.slug}/", follow=True)
    assert response.status_code == 200


def test_an_anonymous_visitor_is_sent_to_sign_in(world):
    response = world.client("anonymous").get(f"/o/{world.org.slug}/")
    assert response.status_code == 302
    assert "/account/login/" in response["Location"]


def test_a_task_re_enters_the_scope_of_the_organization_it_was_given(world):
    from comanage.core.tasks import tenant_task

    seen = {}

    @tenant_task()
    def count_physicians(*, organization):
        seen["count"] = Physician.objects.count()

    count_physicians.delay(organization_id=world.org.pk)
    assert seen["count"] == 2
