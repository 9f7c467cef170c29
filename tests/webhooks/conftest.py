"""A real HTTP receiver on 127.0.0.1 (a thread) that records every delivery it gets and
answers with the status codes a test queues (200 once the queue is empty).

No webhook test reads a PDF: the render task the transitions queue on commit (next to the
webhook deliveries these tests check) notes its report instead of rendering it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.adjudication.conftest import (  # noqa: F401 - fixtures
    co_management,
    recorded,
    render_task_skipped,
)
from tests.api.conftest import _fresh_throttle_cache, api  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _no_pdf_rendered(render_task_skipped):  # type: ignore[no-untyped-def]  # noqa: F811
    """The render task notes its report instead of rendering it (see the module docstring)."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                code = state.answers.pop(0) if state.answers else 200
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(f"answered {code}".encode())

        def log_message(self, format, *args) -> None:  # type: ignore[no-untyped-def]  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()
