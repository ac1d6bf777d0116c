"""Checkstack Redis health checks: a strategy of the healthcheck plugin (strategy id
``redis``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import RedisConfig, RedisStrategy

__all__ = ["RedisConfig", "RedisStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[RedisStrategy]:
        return [RedisStrategy()]


plugin = Plugin(
    id="healthcheck-redis",
    name="Redis health checks",
    description="Health check strategy 'redis': PING, optionally check a key's value.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
