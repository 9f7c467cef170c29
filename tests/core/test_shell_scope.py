import pytest
from django.core.management import CommandError, call_command


def test_the_shell_runs_inside_the_organizations_scope(world, capsys):
    call_command(
        "shell",
        organization=world.org.slug,
        command=(
            "from agreements.models import Physician; "
            "print(sorted(Physician.objects.values_list('last_name', flat=True)))"
        ),
    )
    assert "['Adams', 'Baker']" in capsys.readouterr().out


def test_without_an_organization_the_shell_fails_closed(world):
    from django_scopes import ScopeError

    with pytest.raises(ScopeError):
        call_command(
            "shell",
            command="from agreements.models import Physician; list(Physician.objects.all())",
        )


def test_an_unknown_organization_is_refused(world):
    with pytest.raises(CommandError, match="No organization"):
        call_command("shell", organization="nowhere", command="print(1)")
