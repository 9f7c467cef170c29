"""The suite's ``ast.parse`` lets one thread parse at a time (tests/threadsafe_ast.py)."""

from __future__ import annotations

import ast
import threading

from tests import threadsafe_ast


def test_the_suite_parses_through_the_lock():
    assert ast.parse is threadsafe_ast.parse
    assert isinstance(ast.parse("x = 1"), ast.Module)


def test_a_second_thread_waits_while_one_parses():
    finished = threading.Event()

    def other() -> None:
        ast.parse("y = 2")
        finished.set()

    with threadsafe_ast.LOCK:  # as a parse in progress holds it
        thread = threading.Thread(target=other)
        thread.start()
        assert not finished.wait(0.2), "another thread parsed during this thread's parse"
        assert isinstance(ast.parse("z = 3"), ast.Module)  # re-entrant in the same thread
    assert finished.wait(10)
    thread.join()
