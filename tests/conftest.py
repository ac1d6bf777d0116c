"""Core tests run the host with the example hello plugin, as a plugin author's tests would."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_hello import plugin

    return [plugin]
