"""Fake platform servers for adapter tests: ``FakeApi`` and its ``fake_api`` fixture.

Import the fixture into a test module (``from fakes import fake_api``) to use it.
``FakeApi`` is imported lazily: ``python -m tests.fakes.server`` imports this
package first, and an eager import of ``.server`` here would make runpy warn
that the module it is about to run is already loaded.
"""
from __future__ import annotations

import pytest

from .shapes import (PAGE_ID, PAGE_NAME, PAGE_TOKEN, X_ACCESS_SECRET, X_ACCESS_TOKEN,
                     X_CONSUMER_KEY, X_CONSUMER_SECRET, X_USER_ID, X_USERNAME, Chaos)

__all__ = ["FakeApi", "platforms", "Chaos", "fake_api", "PAGE_ID", "PAGE_NAME", "PAGE_TOKEN",
           "X_ACCESS_SECRET", "X_ACCESS_TOKEN", "X_CONSUMER_KEY", "X_CONSUMER_SECRET",
           "X_USER_ID", "X_USERNAME"]


def __getattr__(name: str):
    if name in ("FakeApi", "platforms"):
        from . import server
        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def fake_api():
    """A running FakeApi on 127.0.0.1; hangs last 3 s unless a test says otherwise."""
    from .server import FakeApi
    with FakeApi(hang_seconds=3.0) as fake:
        yield fake
