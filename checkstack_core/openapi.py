"""OpenAPI document and interactive docs page (placeholder until generated from contracts)."""

from __future__ import annotations

from typing import Any

from .host import Host


def route_handlers(host: Host) -> list[Any]:
    return []
