"""The host's own plugin (id ``core``): the plugin report as a procedure, like any other.

``GET /api/plugins`` and ``POST /api/core/ {"getPlugins": {}}`` answer the same, to holders of
``core.plugins.read`` (admins hold every rule).
"""

from __future__ import annotations

from typing import Any

from .context import Context
from .contract import AccessRule, Contract, Schema, query
from .plugin import Handlers, Plugin

plugins_read = AccessRule("plugins", "read", "See installed plugins, their status and procedures")


class PluginList(Schema):
    plugins: list[dict[str, Any]]


contract = Contract(
    "core",
    rules=[plugins_read],
    procedures=[
        query(
            "getPlugins",
            output=PluginList,
            rules=[plugins_read],
            description="Every discovered plugin: version, status, error, rules, procedures.",
        )
    ],
)
handlers = Handlers(contract)


@handlers.implement("getPlugins")
async def get_plugins(ctx: Context, _input: None) -> PluginList:
    return PluginList(plugins=[record.describe() for record in ctx.host.plugins.values()])


plugin = Plugin(id="core", name="Checkstack core", contract=contract, handlers=handlers)
