"""Checkstack health checks (SPEC §6.2): checks on catalog systems, run on a schedule by
strategy plugins (``checkstack-healthcheck-http``, ``checkstack-healthcheck-tcp``, or yours:
see :mod:`.strategy`), with run history, hourly aggregates, availability and system health.

``plugin`` (what the ``checkstack.plugins`` entry point names) is built in :mod:`._plugin` on
first access, so ``import checkstack_healthcheck.contract`` or ``.strategy`` (clients, strategy
plugins) loads neither the service nor SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._plugin import plugin

__all__ = ["plugin"]


def __getattr__(name: str) -> Any:
    if name == "plugin":
        from ._plugin import plugin

        return plugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
