"""Checkstack DNS health checks: a strategy of the healthcheck plugin (strategy id ``dns``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import DnsConfig, DnsStrategy

__all__ = ["DnsConfig", "DnsStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[DnsStrategy]:
        return [DnsStrategy()]


plugin = Plugin(
    id="healthcheck-dns",
    name="DNS health checks",
    description="Health check strategy 'dns': resolve a name on a chosen resolver, optionally "
    "expecting values.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
