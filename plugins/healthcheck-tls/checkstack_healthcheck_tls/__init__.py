"""Checkstack TLS health checks: a strategy of the healthcheck plugin (strategy id ``tls``).

A plugin of a plugin: it depends on ``healthcheck`` and implements the healthcheck plugin's
``checkstack_healthcheck_strategies`` hook (see ``checkstack_healthcheck.strategy``).
"""

from __future__ import annotations

from checkstack_core import Plugin, hookimpl

from .strategy import TlsConfig, TlsStrategy

__all__ = ["TlsConfig", "TlsStrategy", "plugin"]


class hooks:
    """The hook implementations this plugin registers."""

    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[TlsStrategy]:
        return [TlsStrategy()]


plugin = Plugin(
    id="healthcheck-tls",
    name="TLS health checks",
    description="Health check strategy 'tls': handshake, certificate chain, host name and days "
    "until expiry.",
    depends_on=["healthcheck"],
    hooks=hooks,
)
