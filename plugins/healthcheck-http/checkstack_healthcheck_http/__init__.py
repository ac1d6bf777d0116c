"""Checkstack HTTP health checks: a strategy of the healthcheck plugin (strategy id ``http``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import HttpConfig, HttpStrategy

__all__ = ["HttpConfig", "HttpStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[HttpStrategy]:
        return [HttpStrategy()]


plugin = Plugin(
    id="healthcheck-http",
    name="HTTP health checks",
    description="Health check strategy 'http': request a URL, check the answer.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
