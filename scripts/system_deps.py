#!/usr/bin/env python3
"""The system packages `make run` and `make test` need: check them, install what is missing.

    python3 scripts/system_deps.py --for run     # WeasyPrint's libraries and fonts
    python3 scripts/system_deps.py --for test    # those, plus Chromium and poppler-utils

Silent when everything is there. As root with apt-get (a fresh Debian machine, CI) it installs
what is missing; otherwise it stops at once with one line naming what is missing and the single
command that installs it (exit status 3). Standard library only: it runs before .venv exists.

``COMANAGE_SYSTEM_DEPS`` replaces the list of requirements (used by the tests to simulate an
absent library), as space-separated ``kind:name=debian-package`` entries, where kind is ``lib``
(a shared library, loaded as WeasyPrint loads it), ``cmd`` (a program on PATH), ``file`` (a
path) or ``module`` (a module of the Python running this script). ``VERBOSE=1`` shows apt-get.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MISSING_EXIT = 3


@dataclass(frozen=True)
class Requirement:
    kind: str  # lib | cmd | file | module
    name: str
    package: str

    def present(self) -> bool:
        if self.kind == "lib":
            try:
                ctypes.CDLL(self.name)
            except OSError:
                return False
            return True
        if self.kind == "cmd":
            return shutil.which(self.name) is not None
        if self.kind == "file":
            return Path(self.name).exists()
        if self.kind == "module":
            return importlib.util.find_spec(self.name) is not None
        raise ValueError(f"unknown kind {self.kind!r}")


# WeasyPrint (PDF reports, also while loading the demo) loads these with dlopen; without
# HarfBuzz's subsetting library it warns, which the test suite treats as an error.
RUN = [
    Requirement("lib", "libgobject-2.0.so.0", "libglib2.0-0"),
    Requirement("lib", "libpango-1.0.so.0", "libpango-1.0-0"),
    Requirement("lib", "libpangoft2-1.0.so.0", "libpangoft2-1.0-0"),
    Requirement("lib", "libharfbuzz.so.0", "libharfbuzz0b"),
    Requirement("lib", "libharfbuzz-subset.so.0", "libharfbuzz-subset0"),
    Requirement("lib", "libfontconfig.so.1", "libfontconfig1"),
    Requirement("file", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
]
# The browser tests drive Debian's Chromium headless shell (tests/browser/seed.py), the
# production stage the full Chromium; the PDF checks render pages with pdftoppm; the
# API guide (docs/api.md) runs as a script with curl and jq.
TEST = [
    *RUN,
    Requirement("cmd", "curl", "curl"),
    Requirement("cmd", "jq", "jq"),
    Requirement("cmd", "chromium", "chromium"),
    Requirement("cmd", "chromium-headless-shell", "chromium-headless-shell"),
    Requirement("cmd", "pdftoppm", "poppler-utils"),
]


def requirements(target: str) -> list[Requirement]:
    override = os.environ.get("COMANAGE_SYSTEM_DEPS")
    if override is not None:
        found = []
        for entry in override.split():
            kind, _, rest = entry.partition(":")
            name, _, package = rest.partition("=")
            found.append(Requirement(kind, name, package or name))
        return found
    found = list(TEST if target == "test" else RUN)
    if not (ROOT / ".venv" / "bin" / "pip").exists():
        # `python3.11 -m venv` needs ensurepip, which Debian ships apart from Python itself.
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        found.append(Requirement("module", "ensurepip", f"python{version}-venv"))
    return found


def missing(target: str) -> list[Requirement]:
    return [r for r in requirements(target) if not r.present()]


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install_command(packages: list[str]) -> str:
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def stop_message(target: str, absent: list[Requirement]) -> str:
    names = ", ".join(r.name for r in absent)
    packages = sorted({r.package for r in absent})
    return (
        f"make {target} needs {names} (Debian: {' '.join(packages)}); "
        f"install with: {install_command(packages)}"
    )


def _apt(args: list[str], verbose: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args]
    if verbose:
        return subprocess.run(command, env=env, text=True, check=False)
    return subprocess.run(
        command, env=env, text=True, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def install(packages: list[str], verbose: bool) -> tuple[bool, str]:
    """apt-get install (apt-get update first only if the package lists are stale)."""
    install_args = ["install", "-y", "-q", "--no-install-recommends", *packages]
    result = _apt(install_args, verbose)
    if result.returncode != 0:
        update = _apt(["update", "-q"], verbose)
        if update.returncode != 0:
            return False, update.stdout or ""
        result = _apt(install_args, verbose)
    return result.returncode == 0, result.stdout or ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--for", dest="target", choices=["run", "test"], required=True)
    parser.add_argument("--check", action="store_true", help="only check; never install")
    options = parser.parse_args(argv)
    verbose = os.environ.get("VERBOSE", "") not in ("", "0")

    absent = missing(options.target)
    if not absent:
        return 0
    if options.check or not can_install():
        print(stop_message(options.target, absent), file=sys.stderr)
        return MISSING_EXIT
    packages = sorted({r.package for r in absent})
    print(f"==> Installing system packages: {' '.join(packages)} (apt-get)", flush=True)
    ok, output = install(packages, verbose)
    still = missing(options.target)
    if ok and not still:
        return 0
    if output:
        print(output.rstrip()[-3000:], file=sys.stderr)
    print(stop_message(options.target, still or absent), file=sys.stderr)
    return MISSING_EXIT


if __name__ == "__main__":
    sys.exit(main())
