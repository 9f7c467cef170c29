"""People services: invitations, roles, removal and their rules and bad input
(``comanage.core.people.services``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from comanage.core.models import ApiToken, BusinessEvent, Invitation, Membership, Role, User
from comanage.core.people import services
from tests import factories as f


def _token_from_mail() -> str:
    match = re.search(r"/account/invitations/([^/\s]+)/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def _counts() -> tuple[int, int, int, int]:
    with scopes_disabled():
        return (
            Invitation.objects.count(),
            Membership.objects.count(),
            User.objects.count(),
            BusinessEvent.objects.count(),
        )


def _invite(world, email="newcomer@riverside.example", role="counsel", npi=""):  # type: ignore[no-untyped-def]
    return services.invitation_create(
        organization=world.org, email=email, role=role, npi=npi, actor=world.users["administrator"]
    )


def _field(exc: pytest.ExceptionInfo) -> set[str]:
    return set(exc.value.message_dict)


def test_an_invitation_stores_only_the_hash_and_mails_the_link(world) -> None:
    invitation, raw = _invite(world)
    assert raw not in invitation.token_hash and len(invitation.token_hash) == 64
    assert _token_from_mail() == raw
    assert mail.outbox[-1].to == ["newcomer@riverside.example"]
    assert invitation.expires_at - timezone.now() > dt.timedelta(days=6, hours=23)
    with world.scope():
        event = BusinessEvent.objects.get(name="member.invited")
    assert event.actor == world.users["administrator"]
    assert event.data["email"] == "newcomer@riverside.example"


def test_accepting_creates_the_user_and_membership_once(world) -> None:
    _invitation, raw = _invite(world)
    membership = services.invitation_accept(
        raw_token=raw, first_name="Nia", last_name="New", password="a long enough passphrase 9"
    )
    assert membership.role == Role.COUNSEL and membership.organization == world.org
    assert membership.user.check_password("a long enough passphrase 9")
    before = _counts()
    with pytest.raises(ValidationError, match="already used") as exc:
        services.invitation_accept(
            raw_token=raw, first_name="X", last_name="Y", password="another long passphrase 9"
        )
    assert _field(exc) == {"token"}
    assert _counts() == before


def test_an_expired_link_is_refused_and_changes_nothing(world) -> None:
    invitation, raw = _invite(world)
    with scopes_disabled():
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )
    before = _counts()
    with pytest.raises(ValidationError, match="expired") as exc:
        services.invitation_accept(
            raw_token=raw, first_name="N", last_name="N", password="a long enough passphrase 9"
        )
    assert _field(exc) == {"token"}
    assert _counts() == before


def test_a_resent_invitation_voids_the_old_link(world) -> None:
    invitation, old = _invite(world)
    new = services.invitation_resend(invitation=invitation, actor=world.users["administrator"])
    with pytest.raises(ValidationError, match="not valid"):
        services.invitation_lookup(old)
    assert services.invitation_lookup(new).pk == invitation.pk


def test_a_revoked_invitation_cannot_be_accepted(world) -> None:
    invitation, raw = _invite(world)
    services.invitation_revoke(invitation=invitation, actor=world.users["administrator"])
    with pytest.raises(ValidationError, match="withdrawn"):
        services.invitation_lookup(raw)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"email": "counsel@riverside.example"}, "email", "already a member"),
        ({"role": "superhero"}, "role", "not a role"),
        ({"email": "not-an-address"}, "email", "not an e-mail address"),
        ({"role": "physician"}, "npi", "give its NPI"),
        ({"role": "physician", "npi": "0000000000"}, "npi", "No physician with NPI"),
        ({"role": "counsel", "npi": "1234567893"}, "npi", "Only a physician"),
    ],
)
def test_bad_invitations_name_the_field_and_change_nothing(world, kwargs, field, words) -> None:  # type: ignore[no-untyped-def]
    before = _counts()
    with pytest.raises(ValidationError, match=words) as exc:
        _invite(world, **kwargs)
    assert _field(exc) == {field}
    assert _counts() == before
    assert mail.outbox == []


def test_an_npi_already_linked_is_refused(world) -> None:
    npi = world.physician.npi  # linked to the world's physician member
    before = _counts()
    with pytest.raises(ValidationError, match="already linked") as exc:
        _invite(world, email="twin@riverside.example", role="physician", npi=npi)
    assert _field(exc) == {"npi"}
    assert _counts() == before


def test_an_npi_in_a_pending_invitation_is_refused(world) -> None:
    npi = world.other_physician.npi
    _invite(world, email="bo@riverside.example", role="physician", npi=npi)
    with pytest.raises(ValidationError, match="pending invitation") as exc:
        _invite(world, email="bo2@riverside.example", role="physician", npi=npi)
    assert _field(exc) == {"npi"}


def test_an_address_outside_restricted_domains_is_refused(world) -> None:
    world.org.email_domains = "riverside.example"
    world.org.restrict_to_domains = True
    world.org.save()
    with pytest.raises(ValidationError, match="invites only") as exc:
        _invite(world, email="someone@gmail.example")
    assert _field(exc) == {"email"}
    invitation, _raw = _invite(world, email="someone@riverside.example")
    assert invitation.pk


def test_a_physician_invitation_links_the_record(world) -> None:
    _inv, raw = _invite(
        world, email="bo@riverside.example", role="physician", npi=world.other_physician.npi
    )
    membership = services.invitation_accept(
        raw_token=raw, first_name="Bo", last_name="Baker", password="a long enough passphrase 9"
    )
    assert membership.physician == world.other_physician


def test_a_member_of_another_organization_joins_with_the_same_account(world) -> None:
    from comanage.core.selectors import memberships_checked

    _inv, raw = _invite(world, email=world.outsider.email, role="executive")
    with pytest.raises(ValidationError, match="sign in"):
        services.invitation_accept(raw_token=raw, password="whatever passphrase 99")
    services.invitation_accept(raw_token=raw, user=world.outsider)
    assert User.objects.filter(email=world.outsider.email).count() == 1
    slugs = [m.organization.slug for m in memberships_checked(user=world.outsider)]
    assert slugs == ["lakeview", "riverside"]  # the switcher lists both


def test_accepting_signed_in_as_someone_else_is_refused(world) -> None:
    _inv, raw = _invite(world)
    with pytest.raises(ValidationError, match="Sign out first"):
        services.invitation_accept(raw_token=raw, user=world.users["executive"])


def test_a_weak_password_is_refused_on_acceptance(world) -> None:
    _inv, raw = _invite(world)
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        services.invitation_accept(raw_token=raw, first_name="N", last_name="N", password="123")
    assert _field(exc) == {"password"}
    assert _counts() == before


# --------------------------------------------------------------------------- roles and removal


def test_the_last_administrator_cannot_be_demoted_removed_or_deactivated(world) -> None:
    admin = world.memberships["administrator"]
    actor = world.users["administrator"]
    with pytest.raises(ValidationError, match="last administrator") as exc:
        services.membership_role_change(membership=admin, role="counsel", actor=actor)
    assert _field(exc) == {"role"}
    with pytest.raises(ValidationError, match="last administrator"):
        services.membership_remove(membership=admin, actor=actor)
    with pytest.raises(ValidationError, match="last administrator"):
        services.membership_deactivate(membership=admin, actor=actor)
    admin.refresh_from_db()
    assert admin.role == Role.ADMINISTRATOR and admin.is_active


def test_with_a_second_administrator_one_may_step_down(world) -> None:
    actor = world.users["administrator"]
    services.membership_role_change(
        membership=world.memberships["executive"], role="administrator", actor=actor
    )
    services.membership_role_change(
        membership=world.memberships["administrator"], role="executive", actor=actor
    )
    assert (
        Membership.objects.model._base_manager.get(pk=world.memberships["administrator"].pk).role
        == Role.EXECUTIVE
    )


def test_nobody_raises_their_own_role(world) -> None:
    executive = world.memberships["executive"]
    with pytest.raises(ValidationError, match="cannot raise your own role") as exc:
        services.membership_role_change(
            membership=executive, role="administrator", actor=world.users["executive"]
        )
    assert _field(exc) == {"role"}
    executive.refresh_from_db()
    assert executive.role == Role.EXECUTIVE


def test_a_role_that_does_not_exist_is_refused(world) -> None:
    with pytest.raises(ValidationError, match="not a role") as exc:
        services.membership_role_change(
            membership=world.memberships["counsel"], role="king", actor=world.users["administrator"]
        )
    assert _field(exc) == {"role"}


def test_a_role_change_to_physician_with_a_linked_npi_is_refused(world) -> None:
    with pytest.raises(ValidationError, match="already linked") as exc:
        services.membership_role_change(
            membership=world.memberships["counsel"],
            role="physician",
            npi=world.physician.npi,
            actor=world.users["administrator"],
        )
    assert _field(exc) == {"npi"}


def test_a_role_change_is_audited_with_who_and_whom(world) -> None:
    services.membership_role_change(
        membership=world.memberships["counsel"],
        role="executive",
        actor=world.users["administrator"],
    )
    with world.scope():
        event = BusinessEvent.objects.get(name="member.role_changed")
    assert event.actor == world.users["administrator"]
    assert event.data == {
        "email": "counsel@riverside.example",
        "from": "counsel",
        "to": "executive",
    }


def test_removing_a_member_ends_their_sessions_and_tokens(world, client) -> None:
    counsel = world.users["counsel"]
    client.force_login(counsel)
    _token, _raw = ApiToken.issue(user=counsel, name="laptop")
    assert services.user_access_end  # the helper the removal uses
    services.membership_remove(
        membership=world.memberships["counsel"], actor=world.users["administrator"]
    )
    from django.contrib.sessions.models import Session

    assert not [
        s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(counsel.pk)
    ]
    assert not ApiToken.objects.filter(user=counsel, revoked_at__isnull=True).exists()
    with world.scope():
        assert not Membership.objects.filter(user=counsel).exists()
        event = BusinessEvent.objects.get(name="member.removed")
    assert event.data["email"] == counsel.email


def test_a_physician_record_cannot_be_linked_to_two_people(world) -> None:
    from django.db import IntegrityError, transaction

    user = f.UserFactory(email="dup@riverside.example")
    with scopes_disabled(), pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(
            organization=world.org, user=user, role=Role.PHYSICIAN, physician=world.physician
        )


def test_sso_update_keeps_the_secret_out_of_the_audit_and_keeps_it_when_blank(world) -> None:
    actor = world.users["administrator"]
    with scope(organization=world.org):
        with pytest.raises(ValidationError) as exc:
            services.sso_update(
                organization=world.org,
                actor=actor,
                issuer="https://idp.riverside.example",
                client_id="comanage",
            )
        assert _field(exc) == {"client_secret"}
        provider = services.sso_update(
            organization=world.org,
            actor=actor,
            issuer="https://idp.riverside.example",
            client_id="comanage",
            client_secret="s3cret-value",
            email_domains="riverside.example",
        )
        services.sso_update(
            organization=world.org,
            actor=actor,
            issuer="https://idp.riverside.example",
            client_id="comanage-2",
            email_domains="riverside.example",
        )
        provider.refresh_from_db()
        assert provider.client_secret == "s3cret-value"
        events = list(BusinessEvent.objects.filter(name="sso.updated").order_by("pk"))
    assert "client_secret" in events[0].data["changed"]
    assert events[1].data["changed"] == ["client_id"]
    assert all("s3cret-value" not in str(e.data) + e.summary for e in events)
    with pytest.raises(ValidationError) as exc:
        services.sso_update(organization=world.org, actor=actor, issuer="not a url", client_id="x")
    assert _field(exc) == {"issuer"}
