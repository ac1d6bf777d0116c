"""Checkstack MySQL and MariaDB health checks: a strategy of the healthcheck plugin (strategy id
``mysql``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import MySQLConfig, MySQLStrategy

__all__ = ["MySQLConfig", "MySQLStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[MySQLStrategy]:
        return [MySQLStrategy()]


plugin = Plugin(
    id="healthcheck-mysql",
    name="MySQL and MariaDB health checks",
    description="Health check strategy 'mysql': connect, optionally query and compare.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
