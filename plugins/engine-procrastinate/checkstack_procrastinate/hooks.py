"""The core hooks the engine plugin implements."""

from __future__ import annotations

from checkstack_core import hookimpl
from checkstack_core.hookspecs import EngineRegistrar

ENGINE = "procrastinate"


@hookimpl
def checkstack_register_engines(register: EngineRegistrar) -> None:
    """``procrastinate`` for both ``CHECKSTACK_EVENTS_ENGINE`` and ``CHECKSTACK_JOBS_ENGINE``."""
    from ._plugin import event_bus, job_scheduler

    register.events(ENGINE, event_bus)
    register.jobs(ENGINE, job_scheduler)
