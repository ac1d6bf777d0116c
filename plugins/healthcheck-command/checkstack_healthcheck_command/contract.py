"""The command strategy's access rule: running a program on the server host is more than
managing health checks, so creating, editing and running command checks needs its own rule."""

from __future__ import annotations

from checkstack_core import AccessRule, Contract

PLUGIN_ID = "healthcheck-command"

manage = AccessRule(
    "command",
    "manage",
    "Create, edit and run command health checks: runs any program on the server host as the "
    "server's user",
)
#: ``healthcheck-command.command.manage``
MANAGE = manage.qualified_id(PLUGIN_ID)

contract = Contract(PLUGIN_ID, rules=[manage])
