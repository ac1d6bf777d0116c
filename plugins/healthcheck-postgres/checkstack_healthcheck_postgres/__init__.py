"""Checkstack PostgreSQL health checks: a strategy of the healthcheck plugin (strategy id
``postgres``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import PostgresConfig, PostgresStrategy

__all__ = ["PostgresConfig", "PostgresStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[PostgresStrategy]:
        return [PostgresStrategy()]


plugin = Plugin(
    id="healthcheck-postgres",
    name="PostgreSQL health checks",
    description="Health check strategy 'postgres': connect, optionally query and compare.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
