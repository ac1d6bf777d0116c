"""Checkstack ping health checks: a strategy of the healthcheck plugin (strategy id ``ping``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import PingConfig, PingStrategy

__all__ = ["PingConfig", "PingStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[PingStrategy]:
        return [PingStrategy()]


plugin = Plugin(
    id="healthcheck-ping",
    name="Ping health checks",
    description="Health check strategy 'ping': ICMP echo with packet loss and round-trip "
    "thresholds.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
