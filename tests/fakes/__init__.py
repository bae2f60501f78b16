"""Fake platform servers for adapter tests: ``FakeApi`` and its ``fake_api`` fixture.

Import the fixture into a test module (``from fakes import fake_api``) to use it.
"""
from __future__ import annotations

import pytest

from .server import FakeApi
from .shapes import (PAGE_ID, PAGE_NAME, PAGE_TOKEN, X_ACCESS_SECRET, X_ACCESS_TOKEN,
                     X_CONSUMER_KEY, X_CONSUMER_SECRET, X_USER_ID, X_USERNAME, Chaos)

__all__ = ["FakeApi", "Chaos", "fake_api", "PAGE_ID", "PAGE_NAME", "PAGE_TOKEN",
           "X_ACCESS_SECRET", "X_ACCESS_TOKEN", "X_CONSUMER_KEY", "X_CONSUMER_SECRET",
           "X_USER_ID", "X_USERNAME"]


@pytest.fixture
def fake_api():
    """A running FakeApi on 127.0.0.1; hangs last 3 s unless a test says otherwise."""
    with FakeApi(hang_seconds=3.0) as fake:
        yield fake
