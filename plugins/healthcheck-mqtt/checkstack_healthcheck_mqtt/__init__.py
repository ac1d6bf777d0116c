"""Checkstack MQTT health checks: a strategy of the healthcheck plugin (strategy id
``mqtt``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import MqttConfig, MqttStrategy

__all__ = ["MqttConfig", "MqttStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[MqttStrategy]:
        return [MqttStrategy()]


plugin = Plugin(
    id="healthcheck-mqtt",
    name="MQTT health checks",
    description="Health check strategy 'mqtt': connect to a broker, optionally a round trip.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
