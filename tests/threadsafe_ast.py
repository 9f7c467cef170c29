"""``ast.parse`` one thread at a time, in the test process (installed by tests/conftest.py).

CPython 3.11 keeps the AST constructor's recursion depth in state every thread shares
(python/cpython#106905): when the garbage collector runs Python code (a finalizer, a weak
reference's callback) in the middle of one thread's parse, another thread's parse can run in
between, and one of them fails with ``SystemError: AST constructor recursion depth mismatch``.
The suite has both threads: Hypothesis parses source files to describe a strategy's lambdas
(the API fuzz), while a live server's thread formats a logged exception (the redaction filter,
comanage/core/logging.py; Python 3.11's tracebacks parse each line for their carets). It failed
the API fuzz twice in about a dozen runs. A script with three threads parsing ``ast.py`` while
finalizers run failed in half of its runs on Python 3.11.7, and in none with the lock.

Production is not concerned: gunicorn's workers are ``sync`` (one thread, one request at a
time) and Celery's are processes, so no second thread parses beside a first.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

LOCK = threading.RLock()  # re-entrant: a finalizer run inside a parse may parse too
_parse = ast.parse


def parse(*args: Any, **kwargs: Any) -> ast.AST:
    with LOCK:
        return _parse(*args, **kwargs)


def install() -> None:
    """Route every ``ast.parse`` (looked up on the module at each call, as Hypothesis and
    ``traceback`` do) through the lock."""
    ast.parse = parse  # type: ignore[assignment]
