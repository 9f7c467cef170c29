"""A real OpenID Connect provider for the SSO tests: panva/oidc-provider run by node."""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"


@dataclass
class OIDCServer:
    issuer: str
    client_id: str
    client_secret: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _install(npm: str) -> None:
    """npm ci once (node_modules is kept in the folder); a lock serialises xdist workers."""
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed for the test OIDC provider:\n{result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def oidc_server(live_server, tmp_path_factory) -> Iterator[OIDCServer]:  # type: ignore[no-untyped-def]
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the test OpenID Connect provider")
    _install(npm)
    port = _free_port()
    server = OIDCServer(
        issuer=f"http://127.0.0.1:{port}",
        client_id="comanage-test",
        client_secret=secrets.token_urlsafe(24),
    )
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_ID": server.client_id,
        "CLIENT_SECRET": server.client_secret,
        "REDIRECT_URIS": f"{live_server.url}/account/oidc/callback/",
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [node, "server.js"], cwd=PROVIDER_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{server.issuer}/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the test OIDC provider did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
