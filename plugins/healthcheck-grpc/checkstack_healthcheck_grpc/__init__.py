"""Checkstack gRPC health checks: a strategy of the healthcheck plugin (strategy id ``grpc``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import GrpcConfig, GrpcStrategy

__all__ = ["GrpcConfig", "GrpcStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[GrpcStrategy]:
        return [GrpcStrategy()]


plugin = Plugin(
    id="healthcheck-grpc",
    name="gRPC health checks",
    description="Health check strategy 'grpc': the standard grpc.health.v1 Health/Check.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
