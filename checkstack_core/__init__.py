"""Checkstack core: what a plugin author imports.

Lazy attribute access keeps ``import checkstack_core`` cheap (the pytest plugin and entry points
import it); the server parts load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "AccessRule",
    "BadRequest",
    "CallerKind",
    "Conflict",
    "Context",
    "Contract",
    "DeliveryMode",
    "Event",
    "EventType",
    "Forbidden",
    "Handlers",
    "InstanceAccess",
    "JobRun",
    "Level",
    "NotFound",
    "Plugin",
    "Principal",
    "PrincipalKind",
    "RpcError",
    "Schema",
    "ServiceRef",
    "Unauthorized",
    "hookimpl",
    "hookspec",
    "mutation",
    "query",
]

_WHERE = {
    "AccessRule": "contract",
    "CallerKind": "contract",
    "Contract": "contract",
    "EventType": "contract",
    "InstanceAccess": "contract",
    "Level": "contract",
    "Schema": "contract",
    "mutation": "contract",
    "query": "contract",
    "BadRequest": "errors",
    "Conflict": "errors",
    "Forbidden": "errors",
    "NotFound": "errors",
    "RpcError": "errors",
    "Unauthorized": "errors",
    "Context": "context",
    "DeliveryMode": "events",
    "Event": "events",
    "JobRun": "jobs",
    "Handlers": "plugin",
    "Plugin": "plugin",
    "ServiceRef": "plugin",
    "Principal": "auth",
    "PrincipalKind": "auth",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
}

if TYPE_CHECKING:
    from .auth import Principal, PrincipalKind
    from .context import Context
    from .contract import (
        AccessRule,
        CallerKind,
        Contract,
        EventType,
        InstanceAccess,
        Level,
        Schema,
        mutation,
        query,
    )
    from .errors import BadRequest, Conflict, Forbidden, NotFound, RpcError, Unauthorized
    from .events import DeliveryMode, Event
    from .hookspecs import hookimpl, hookspec
    from .jobs import JobRun
    from .plugin import Handlers, Plugin, ServiceRef


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'checkstack_core' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
