"""The scheduler of one process: claims due runs from the database, probes with bounded
concurrency and a hard timeout per run, and records finished runs in batches.

- Each process that runs background work polls by itself (:meth:`Executor.kick` every
  ``poll_interval_seconds``), and at once after a check's schedule changed; a pass also sets a
  timer for the next due slot, so runs start on time between polls. A pass claims at most as
  many due runs as this process has free slots (``max_concurrency``), so a slow or hanging target
  holds one slot until its timeout and never delays the others; and a process never claims what
  it cannot start (another process may take it). A pass never overlaps another.
- Which processes run checks: every process with the embedded engines
  (``checkstack serve --workers 2``: each of the two); with a distributed engine (procrastinate)
  only the ``checkstack worker`` processes, each polling and claiming for itself, so N workers
  share the checks (:func:`checkstack_core.workers.runs_background_work`). The poll is not a
  job: a shared job would run in one worker per slot, and that worker would carry every check.
- Claims move ``next_run_ms`` in the database (:func:`.service.claim_due`, ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL): whichever process claims a slot runs it, once. Schedules live in the
  database, so after a restart every check resumes from its last run time; an overdue one runs
  once. A process killed while a run is in flight loses that run only: the check's next slot is
  already in the database for any other process to claim, on time.
- Finished runs go to a queue; one writer task records them (up to ``write_batch`` per
  transaction), in its own transaction as the plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from checkstack_core.workers import runs_background_work

from . import service

if TYPE_CHECKING:
    from checkstack_core import Context
    from checkstack_core.host import Host

logger = logging.getLogger("checkstack.plugins.healthcheck")

#: The shared poll schedule of earlier versions, cancelled at startup: under a distributed engine
#: it ran in one worker per slot, which then claimed every check.
DISPATCH_KEY = "healthcheck:dispatch"


class Executor:
    def __init__(self, host: Host, runtime: service.Runtime) -> None:
        self._host = host
        self._runtime = runtime
        self._settings = runtime.settings
        self._in_flight: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[service.Outcome] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._claimer: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._again = False
        self._saturated = False
        self._timer: asyncio.TimerHandle | None = None
        #: SQLite has one writer: claims and recording take turns in this process instead of
        #: waiting on the database lock (its busy handler sleeps in steps of up to 100 ms).
        self._turns: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if host.db.url.startswith("sqlite") else contextlib.nullcontext()
        )
        #: Counters for the benchmark and tests.
        self.started = 0
        self.recorded = 0
        #: Claim transactions (a pass that finds nothing due counts too).
        self.claims = 0
        self.lateness_ms: list[float] = []
        self.keep_lateness = False

    @property
    def free(self) -> int:
        return max(self._settings.max_concurrency - len(self._in_flight), 0)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="healthcheck-writer")
        self._poller = asyncio.create_task(self._poll_loop(), name="healthcheck-poll")

    async def _poll_loop(self) -> None:
        """Look for due runs every ``poll_interval_seconds`` (timers take runs due sooner)."""
        while True:
            self.kick()
            await asyncio.sleep(self._settings.poll_interval_seconds)

    async def stop(self) -> None:
        """Cancel runs in flight (their slots come round again), record what finished."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._claimer is not None:
            await asyncio.gather(self._claimer, return_exceptions=True)
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.join(), timeout=10)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    def kick(self) -> None:
        """Look for due runs now, unless a pass is already running (then it looks again)."""
        if self._stopping:
            return
        if self._claimer is not None and not self._claimer.done():
            self._again = True
            return
        self._claimer = asyncio.create_task(self._claim_loop(), name="healthcheck-claims")

    async def _claim_loop(self) -> None:
        """Claim due runs for the free slots and start them, again while there may be more; then
        set a timer for the next due slot (sooner than the next poll, so runs start on time)."""
        try:
            while not self._stopping:
                self._again = False
                free = self.free
                if free <= 0:
                    self._saturated = True  # a finishing run kicks again
                    return
                self.claims += 1
                async with self._turns, self._host.service_context("healthcheck") as ctx:
                    claimed = await service.claim_due(ctx.session, free)
                    following = None
                    if len(claimed) < free:
                        following = await service.next_due_ms(ctx.session)
                # Committed: start the runs.
                self._start(claimed)
                if len(claimed) >= free or self._again:
                    continue
                if following is not None:
                    self._wake_at(following)
                return
        except Exception:
            logger.exception("Claiming due health check runs failed")

    def _wake_at(self, due_ms: int) -> None:
        delay = max(due_ms - service.now_ms(), 0) / 1000
        if delay >= self._settings.poll_interval_seconds:
            return  # the poll comes first
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self.kick)

    def _start(self, claimed: list[service.Due]) -> None:
        now_ms = service.now_ms()
        for due in claimed:
            if self.keep_lateness:
                self.lateness_ms.append(max(now_ms - due.scheduled_ms, 0))
            task = asyncio.create_task(self._run(due), name=f"healthcheck-run:{due.check_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        self.started += len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._saturated:
            self._saturated = False
            self.kick()

    async def _run(self, due: service.Due) -> None:
        started = datetime.now(UTC)
        result = await service.execute(
            self._runtime, due.strategy_id, due.config, due.timeout_seconds
        )
        self._queue.put_nowait(service.Outcome(due.check_id, due.system_id, started, result))

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._settings.write_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._record(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Recording %d health check runs failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _record(self, batch: list[service.Outcome]) -> None:
        for attempt in range(3):
            try:
                async with self._turns, self._host.service_context("healthcheck") as ctx:
                    await service.record_runs(ctx, batch)
                self.recorded += len(batch)
                return
            except Exception:
                if attempt == 2:
                    raise
                # A deadlock or serialization failure (PostgreSQL): try the batch again.
                for outcome in batch:
                    outcome.run_id = None
                await asyncio.sleep(0.05 * (attempt + 1))

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until no run is in flight and every finished one is recorded (tests)."""
        async with asyncio.timeout(timeout):
            while self._in_flight:
                await asyncio.gather(*list(self._in_flight), return_exceptions=True)
            await self._queue.join()


async def start(ctx: Context, runtime: service.Runtime) -> None:
    """Start this process's scheduler, unless ``scheduler = false`` or the process runs no
    background work (``checkstack serve`` under a distributed engine: the workers run checks)."""
    await ctx.jobs.cancel(DISPATCH_KEY)
    if not runtime.settings.scheduler or not runs_background_work(ctx.host):
        return
    executor = Executor(ctx.host, runtime)
    executor.start()
    runtime.executor = executor


def wake(ctx: Context) -> None:
    """Look for due runs now (after a schedule changed)."""
    executor = ctx.service(service.RUNTIME).executor
    if executor is not None:
        executor.kick()
