"""Checkstack TCP health checks: a strategy of the healthcheck plugin (strategy id ``tcp``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import TcpConfig, TcpStrategy

__all__ = ["TcpConfig", "TcpStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[TcpStrategy]:
        return [TcpStrategy()]


plugin = Plugin(
    id="healthcheck-tcp",
    name="TCP health checks",
    description="Health check strategy 'tcp': connect to a port, optionally expect a banner.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
