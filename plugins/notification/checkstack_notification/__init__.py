"""Checkstack notifications (SPEC §12): channels configured by administrators (any Apprise URL,
signed webhooks), subscriptions of users and teams to systems and groups, an in-app inbox,
triggers from health changes, incidents and maintenance (silenced by suppressing ones), outgoing
integration webhooks for any plugin's events, all delivered from an outbox with retries.

``plugin`` (what the ``checkstack.plugins`` entry point names) is built in :mod:`._plugin` on
first access, so ``import checkstack_notification.contract`` loads neither the service nor
SQLAlchemy.
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
