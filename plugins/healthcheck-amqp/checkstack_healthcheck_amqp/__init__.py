"""Checkstack AMQP (RabbitMQ) health checks: a strategy of the healthcheck plugin (strategy id
``amqp``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import AmqpConfig, AmqpStrategy

__all__ = ["AmqpConfig", "AmqpStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[AmqpStrategy]:
        return [AmqpStrategy()]


plugin = Plugin(
    id="healthcheck-amqp",
    name="AMQP (RabbitMQ) health checks",
    description="Health check strategy 'amqp': connect, queue backlog, round trip.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
