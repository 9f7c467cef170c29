"""The development commands: seed_demo's production guard, `make run`'s system-package check
(scripts/system_deps.py) and its port check (scripts/run_dev.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from comanage.core.management.commands import seed_demo
from comanage.core.models import Organization

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "kT3v9Qz-8Lr_Xw2Pn5Jm7Hs4Fd6Gb1Yc0Na8Ue3Wi5Oq9Rt2Zx7Cv4Bn6Ml1Kj"


# --- seed_demo refuses production -------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_refuses_production_settings(settings, monkeypatch):
    settings.COMANAGE_PRODUCTION = True
    monkeypatch.delenv(seed_demo.FORCE_ENV, raising=False)
    with pytest.raises(
        CommandError,
        match=r"seed_demo refused: these are production settings.*"
        r"--force-production \(or set SEED_DEMO_FORCE_PRODUCTION=true\)",
    ):
        call_command("seed_demo")
    assert not Organization.objects.exists()


@pytest.mark.django_db
def test_scale_demo_refuses_production_settings_too(settings, monkeypatch):
    settings.COMANAGE_PRODUCTION = True
    monkeypatch.delenv(seed_demo.FORCE_ENV, raising=False)
    with pytest.raises(CommandError, match=r"scale_demo refused: these are production settings"):
        call_command("scale_demo", "--organization", "nowhere")


@pytest.mark.parametrize("how", ["flag", "environment"])
@pytest.mark.django_db
def test_seed_demo_runs_in_production_only_when_forced(settings, monkeypatch, how):
    settings.COMANAGE_PRODUCTION = True
    monkeypatch.setattr(seed_demo, "DEMO_ORGANIZATIONS", [])  # the guard, not the whole demo
    monkeypatch.delenv(seed_demo.FORCE_ENV, raising=False)
    if how == "flag":
        call_command("seed_demo", "--force-production", verbosity=0)
    else:
        monkeypatch.setenv(seed_demo.FORCE_ENV, "true")
        call_command("seed_demo", verbosity=0)
    from comanage.core.models import User

    assert User.objects.filter(email="admin@comanage.example").exists()


def test_seed_demo_under_the_real_production_settings_exits_with_the_message():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
        "SECRET_KEY": GOOD_KEY,
        "DATABASE_URL": "postgres://comanage:s3cret@127.0.0.1:1/x",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--skip-checks"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "CommandError: seed_demo refused: these are production settings" in result.stderr


# --- `make run` / `make test`: the system packages --------------------------------------------

ABSENT = "lib:libcomanage-absent.so.0=comanage-absent0"


def _system_deps(tmp_path: Path, target: str, path: str, deps: str = ABSENT):
    env = {"PATH": path, "COMANAGE_SYSTEM_DEPS": deps, "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "system_deps.py"), "--for", target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["run", "test"])
def test_a_missing_library_stops_at_once_with_the_command_that_installs_it(tmp_path, target):
    """Without apt-get (or without root) nothing is installed: one line, exit status 3."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _system_deps(tmp_path, target, str(empty))
    sudo = "" if os.geteuid() == 0 else "sudo "
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"make {target} needs libcomanage-absent.so.0 (Debian: "
        f"comanage-absent0); install with: {sudo}apt-get install -y "
        "comanage-absent0\n"
    )


def test_as_root_with_apt_get_the_missing_package_is_installed(tmp_path):
    """A stand-in apt-get records what it is asked; as root it is asked to install the missing
    package (and, as the install fails here, to update its lists and try again). As any other
    user it is never run and the command to run is printed instead."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    apt = bin_dir / "apt-get"
    # Its lists are stale: install fails until an update, which succeeds (and changes nothing).
    apt.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$3" = update ]\n')
    apt.chmod(0o755)
    result = _system_deps(tmp_path, "run", f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith(
        "make run needs libcomanage-absent.so.0 (Debian: comanage-absent0); install with: "
    )
    if os.geteuid() == 0:
        lines = calls.read_text().splitlines()
        assert [line.split()[2] for line in lines] == ["install", "update", "install"]
        assert lines[0].endswith("install -y -q --no-install-recommends comanage-absent0")
        assert result.stdout == "==> Installing system packages: comanage-absent0 (apt-get)\n"
    else:
        assert not calls.exists()


def test_present_requirements_pass_silently(tmp_path):
    deps = f"cmd:sh=dash file:{ROOT / 'Makefile'}=make module:json=python3"
    result = _system_deps(tmp_path, "test", "/usr/bin:/bin", deps=deps)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_makefile_and_ci_use_the_same_install_step():
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/system_deps.py --for run" in makefile
    assert "scripts/system_deps.py --for test" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/system_deps.py --for test" in ci and "apt-get install" not in ci


# --- `make run PORT=…`: a port in use is one line ---------------------------------------------


def _run_dev(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_dev.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "VERBOSE": ""},
    )


def test_a_port_in_use_is_one_line_not_a_traceback():
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = _run_dev("--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Port {port} on 127.0.0.1 is already in use (another `make run`?);"
        f" stop that, or choose another port: make run PORT={port + 10}\n"
    )


def test_a_free_port_passes_the_check():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _run_dev("--check-port", "--host", "127.0.0.1", "--port", str(port))
    assert (result.returncode, result.stderr) == (0, "")
