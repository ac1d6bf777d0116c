"""Checkstack maintenance windows (SPEC §6.3): planned work on catalog systems, with a status
machine, a timeline, automatic transitions at ``startAt``/``endAt`` and notification
suppression for the healthcheck plugin.

``plugin`` (what the ``checkstack.plugins`` entry point names) is built in :mod:`._plugin` on
first access, so ``import checkstack_maintenance.contract`` (clients and other plugins) loads
neither the service nor SQLAlchemy.
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
