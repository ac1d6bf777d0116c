"""Core tests run the host with the example hello plugin and a test-only notes plugin, loaded
through the core's own fixtures as a plugin author's tests would."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_hello import plugin as hello
    from notes_plugin import plugin as notes

    return [hello, notes]
