"""Checkstack command health checks: a strategy of the healthcheck plugin (strategy id
``command``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook. Its contract declares the rule
``healthcheck-command.command.manage``, which the strategy requires (``required_rules``) of
whoever creates, edits or runs its checks: the config names a program the server runs.
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .contract import MANAGE, contract
from .strategy import CommandConfig, CommandStrategy

__all__ = ["MANAGE", "CommandConfig", "CommandStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[CommandStrategy]:
        return [CommandStrategy()]


plugin = Plugin(
    id="healthcheck-command",
    name="Command health checks",
    description="Health check strategy 'command': run a program (no shell), check its exit code "
    "and output. Needs the rule healthcheck-command.command.manage.",
    contract=contract,
    depends_on=["healthcheck"],
    hooks=hooks,
)
