"""Load the hello plugin (and nothing else but the core) in every test of this folder."""

from __future__ import annotations

import pytest

from checkstack_core import Plugin


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    """The plugins the test host loads: the one under test."""
    from checkstack_hello import plugin

    return [plugin]
