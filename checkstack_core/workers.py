"""``checkstack worker``: processes that run jobs and work-queue events, and nothing else.

The embedded engines run jobs and events inside every ``checkstack serve`` process. A distributed
engine (e.g. the procrastinate engine plugin) instead runs them in worker processes: its
``start()`` only connects (serving processes still schedule jobs and emit events), and it
implements :class:`WorkerEngine`, whose :meth:`~WorkerEngine.run_worker` the command calls.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .host import Host

logger = logging.getLogger("checkstack.worker")


@runtime_checkable
class WorkerEngine(Protocol):
    """An event bus or job scheduler whose work runs in ``checkstack worker`` processes."""

    async def run_worker(self, *, concurrency: int, stop: asyncio.Event) -> None:
        """Run due work, at most ``concurrency`` items at once, until ``stop`` is set; then
        let running work finish for a grace period and release the rest to other workers."""
        ...


class NoWorkerEngine(RuntimeError):
    """Neither engine of the host runs in worker processes."""


def worker_engines(host: Host) -> list[WorkerEngine]:
    """The host's engines that run in workers (one object may be both)."""
    engines: list[WorkerEngine] = []
    for engine in (host.jobs, host.events):
        if isinstance(engine, WorkerEngine) and all(engine is not e for e in engines):
            engines.append(engine)
    return engines


def runs_background_work(host: Host) -> bool:
    """Whether this process should run the deployment's background work (the jobs, and whatever
    a plugin runs on its own timers, such as the healthcheck scheduler).

    Every process does with an in-process job scheduler (the embedded engine); with a distributed
    one only ``checkstack worker`` processes do, and ``checkstack serve`` processes only serve
    requests. Valid from the plugins' startup callbacks on (the engines are chosen by then).
    """
    return host.worker or not isinstance(host.jobs, WorkerEngine)


#: Seconds between two touches of ``--health-file``.
HEALTH_EVERY = 5.0


async def _touch(path: Path) -> None:
    """Keep ``path``'s modification time fresh while the worker runs (container health checks)."""
    while True:
        path.touch()  # noqa: ASYNC240  (a tiny local file, every few seconds)
        await asyncio.sleep(HEALTH_EVERY)


async def run_worker(
    host: Host,
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
    health_file: Path | None = None,
) -> None:
    """Start ``host``, run its worker engines until SIGTERM/SIGINT (or ``stop``), stop it.

    With ``health_file``, the file is touched every :data:`HEALTH_EVERY` seconds while the
    engines run and removed when the worker stops.
    """
    stop = stop or asyncio.Event()
    health: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    host.worker = True
    try:
        await host.start()
        engines = worker_engines(host)
        if not engines:
            raise NoWorkerEngine(
                "checkstack worker runs the jobs and events of a distributed engine, but "
                f"CHECKSTACK_JOBS_ENGINE={host.settings.jobs_engine} and "
                f"CHECKSTACK_EVENTS_ENGINE={host.settings.events_engine} run inside every "
                "checkstack serve process. Select one, e.g. procrastinate (docs/deployers.md)."
            )
        logger.info(
            "Worker started: concurrency %d, jobs on %s, events on %s",
            concurrency,
            host.settings.jobs_engine,
            host.settings.events_engine,
        )
        if health_file is not None:
            health = asyncio.create_task(_touch(health_file), name="checkstack-worker-health")
        await asyncio.gather(
            *(engine.run_worker(concurrency=concurrency, stop=stop) for engine in engines)
        )
        logger.info("Worker stopped")
    finally:
        if health is not None:
            health.cancel()
            await asyncio.gather(health, return_exceptions=True)
        if health_file is not None:
            health_file.unlink(missing_ok=True)  # noqa: ASYNC240  (once, at exit)
        for signum in signals:
            loop.remove_signal_handler(signum)
        await host.stop()
