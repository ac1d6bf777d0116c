"""Checkstack SSH health checks: a strategy of the healthcheck plugin (strategy id ``ssh``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import SshConfig, SshStrategy

__all__ = ["SshConfig", "SshStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[SshStrategy]:
        return [SshStrategy()]


plugin = Plugin(
    id="healthcheck-ssh",
    name="SSH health checks",
    description="Health check strategy 'ssh': log in, optionally run a command and check it.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
