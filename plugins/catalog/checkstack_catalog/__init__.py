"""Checkstack catalog: the systems a status page shows and the groups they are arranged in
(SPEC §6.1). Other plugins refer to systems by id and clean up on ``catalog.system.deleted``.

``plugin`` (what the ``checkstack.plugins`` entry point names) is built in :mod:`._plugin` on
first access, so ``import checkstack_catalog.contract`` (clients and other plugins) loads
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
