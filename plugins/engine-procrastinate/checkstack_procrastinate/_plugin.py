"""The engine plugin: its schema migrations and its engines, offered through the core's
:func:`~checkstack_core.hookspecs.checkstack_register_engines` hook."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from checkstack_core import Plugin

from . import hooks
from .config import EngineSettings

if TYPE_CHECKING:
    from checkstack_core.host import Host

    from .events import ProcrastinateEventBus
    from .runtime import Runtime
    from .scheduler import ProcrastinateJobScheduler

PLUGIN_ID = "procrastinate"

#: One runtime (pool, LISTEN connection, worker) per host, shared by its two engines.
_runtimes: weakref.WeakKeyDictionary[Host, Runtime] = weakref.WeakKeyDictionary()


def runtime_for(host: Host) -> Runtime:
    """The host's runtime; refuses clearly anything but PostgreSQL."""
    from .runtime import Runtime

    runtime = _runtimes.get(host)
    if runtime is None:
        settings = EngineSettings.load(host.settings.plugin(PLUGIN_ID))
        runtime = _runtimes[host] = Runtime(host.settings.database_url, settings)
    return runtime


def event_bus(host: Host) -> ProcrastinateEventBus:
    from .events import ProcrastinateEventBus

    return ProcrastinateEventBus(runtime_for(host))


def job_scheduler(host: Host) -> ProcrastinateJobScheduler:
    from .scheduler import ProcrastinateJobScheduler

    return ProcrastinateJobScheduler(runtime_for(host))


plugin = Plugin(
    id=PLUGIN_ID,
    name="procrastinate engine",
    description="Events and jobs on procrastinate over PostgreSQL, run by `checkstack worker`; "
    "select with CHECKSTACK_EVENTS_ENGINE / CHECKSTACK_JOBS_ENGINE = procrastinate.",
    migrations=Path(__file__).parent / "migrations",
    hooks=hooks,
)
