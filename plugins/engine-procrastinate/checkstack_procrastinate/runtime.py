"""One process's connection to procrastinate, shared by its event bus and its job scheduler.

- A psycopg pool (procrastinate's :class:`~procrastinate.PsycopgConnector`), opened on first use:
  plugins schedule jobs and emit events from their startup callbacks, before the engines start.
- A procrastinate :class:`~procrastinate.App` with two tasks, ``checkstack.job`` (queue
  ``checkstack-jobs``) and ``checkstack.event`` (queue ``checkstack-events``). Which checkstack job
  or subscription a procrastinate job stands for is in its arguments, never its payload: workers
  log their jobs' arguments, and payloads may hold secrets.
- A ``LISTEN`` connection for broadcast events and wake-ups, reconnecting when it drops.
- In a ``checkstack worker`` process only, a procrastinate :class:`~procrastinate.worker.Worker`
  with heartbeats, and a recovery loop that hands the jobs of dead workers (no heartbeat for
  ``stalled_after`` seconds) to the live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
from procrastinate import JobContext, RetryDecision
from procrastinate.retry import BaseRetryStrategy
from procrastinate.worker import Worker
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from .config import EngineSettings, conninfo
from .schema import check_schema_version

if TYPE_CHECKING:
    from procrastinate.jobs import Job

    from .events import ProcrastinateEventBus
    from .scheduler import ProcrastinateJobScheduler

logger = logging.getLogger("checkstack.procrastinate")

JOBS_QUEUE = "checkstack-jobs"
EVENTS_QUEUE = "checkstack-events"
QUEUES = (JOBS_QUEUE, EVENTS_QUEUE)
JOB_TASK = "checkstack.job"
EVENT_TASK = "checkstack.event"
#: NOTIFY channels: broadcast events, and due times of newly deferred jobs.
BROADCAST_CHANNEL = "checkstack_broadcast_v1"
WAKEUP_CHANNEL = "checkstack_wakeup_v1"
#: How often a worker deletes old failed jobs and event payloads no job needs any more.
HOUSEKEEPING_EVERY = 60.0

Cursor = psycopg.AsyncCursor[DictRow]


#: Origin of :func:`due_priority` (an ``integer`` column: seconds since it fit for 68 years).
_PRIORITY_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def due_priority(due: datetime) -> int:
    """The procrastinate priority of a job due at ``due``: the earlier, the higher.

    procrastinate fetches the highest priority first, scanning pending jobs in that order until
    one is due. With equal priorities it scans by id, through every job scheduled for later: the
    cost of each fetch grew with the number of schedules. Earliest-due-first finds a due job at
    the head of the index, and runs overdue work before work that only just fell due.
    """
    return -int((due - _PRIORITY_EPOCH).total_seconds())


class RetryLater(Exception):
    """Raised by a task to have procrastinate run its job again at ``retry_at``."""

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(f"retry at {retry_at.isoformat()}")
        self.retry_at = retry_at


class _Retry(BaseRetryStrategy):
    """The engine decides retries itself (it knows each job's and subscription's limits):
    :class:`RetryLater` is retried when it says; a job cancelled by a stopping worker (its
    grace period over) is released at once for another worker; anything else has failed."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_at=exception.retry_at)
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_at=datetime.now(UTC))
        return None


class Runtime:
    """What the engines of one host share (see the module docstring)."""

    def __init__(self, database_url: str, settings: EngineSettings) -> None:
        self.settings = settings
        self.conninfo = conninfo(database_url)
        check_schema_version()
        quiet = logging.getLogger("procrastinate")
        if quiet.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
            # procrastinate logs every job's start and end at INFO: thousands of lines a minute
            # under the healthcheck's load. Its warnings and errors still show; DEBUG shows all.
            quiet.setLevel(logging.WARNING)
        self.connector = procrastinate.PsycopgConnector(
            conninfo=self.conninfo,
            min_size=1,
            max_size=settings.pool_size,
            name="checkstack-procrastinate",
        )
        self.app = procrastinate.App(connector=self.connector)
        self.jobs: ProcrastinateJobScheduler | None = None
        self.events: ProcrastinateEventBus | None = None
        self._open_lock: asyncio.Lock | None = None
        self._opened = False
        self._listeners: dict[str, Callable[[str], None]] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._users = 0
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False
        retry = _Retry()

        @self.app.task(name=JOB_TASK, queue=JOBS_QUEUE, pass_context=True, retry=retry)
        async def run_job(context: JobContext, **_: Any) -> None:
            if self.jobs is None:
                raise RuntimeError("jobs_engine is not procrastinate in this process")
            await self.jobs.run(context.job)

        @self.app.task(name=EVENT_TASK, queue=EVENTS_QUEUE, pass_context=True, retry=retry)
        async def run_event(context: JobContext, **_: Any) -> None:
            if self.events is None:
                raise RuntimeError("events_engine is not procrastinate in this process")
            await self.events.run(context.job)

    # -- connections ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool (once; every other method calls this first)."""
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if not self._opened:
                await self.app.open_async()
                self._opened = True

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Cursor]:
        """A cursor (rows as dicts) in a transaction committed when the block succeeds."""
        await self.open()
        async with (
            self.connector.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cursor,
        ):
            yield cursor

    async def lock_key(self, cursor: Cursor, key: str) -> None:
        """Serialise everything done to one job key until the transaction ends."""
        await cursor.execute("SELECT pg_advisory_xact_lock(1129531970, hashtext(%s))", (key,))

    async def defer(self, cursor: Cursor, jobs: list[procrastinate.jobs.Job]) -> list[int]:
        """Defer ``jobs`` in the cursor's transaction; wakes the workers at their due times."""
        deferred = await self.app.job_manager.batch_defer_jobs_async(
            jobs, connection=cursor.connection
        )
        due = {j.scheduled_at.timestamp() for j in jobs if j.scheduled_at is not None}
        for at in sorted(due):
            await cursor.execute("SELECT pg_notify(%s, %s)", (WAKEUP_CHANNEL, repr(at)))
        return [job.id for job in deferred if job.id is not None]

    # -- listening ------------------------------------------------------------------------

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        self._listeners[channel] = callback

    async def start(self) -> None:
        """Called by each engine's ``start``: the first one opens and starts listening."""
        self._users += 1
        await self.open()
        if self._listen_task is None:
            self._listen_task = asyncio.create_task(self._listen(), name="checkstack-listen")
            async with asyncio.timeout(30):
                await self._listening.wait()

    async def stop(self) -> None:
        """Called by each engine's ``stop``: the last one stops the worker and closes."""
        self._users -= 1
        if self._users > 0:
            return
        await self.stop_worker()
        if self._listen_task is not None:
            self._listen_task.cancel()
            await asyncio.gather(self._listen_task, return_exceptions=True)
            self._listen_task = None
        for timer in self._timers:
            timer.cancel()
        if self._opened:
            await self.app.close_async()
            self._opened = False

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    for channel in (BROADCAST_CHANNEL, WAKEUP_CHANNEL):
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._listening.set()
                    delay = 0.2
                    while True:
                        async for note in conn.notifies(timeout=30.0):
                            callback = self._listeners.get(note.channel)
                            if callback is not None:
                                callback(note.payload)
                        await conn.execute("SELECT 1")  # a dead connection raises here
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Broadcasts sent until we are back are missed (they are never retried).
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- the worker -----------------------------------------------------------------------

    @property
    def working(self) -> bool:
        return self._worker is not None

    async def run_worker(self, *, concurrency: int, stop: asyncio.Event) -> None:
        """Run jobs and work-queue events until ``stop`` is set, then shut down gracefully.

        Both engines of a process call this; they share one worker.
        """
        if self._worker_task is None:
            self._worker_task = asyncio.create_task(
                self._work(concurrency, stop), name="checkstack-worker"
            )
        await asyncio.shield(self._worker_task)

    async def _work(self, concurrency: int, stop: asyncio.Event) -> None:
        await self.open()
        # The worker's fetches, heartbeats, job runs and the engines' own writes.
        await self.connector.pool.resize(
            min_size=1, max_size=self.settings.pool_size + concurrency + 3
        )
        worker = self._worker = Worker(
            app=self.app,
            queues=list(QUEUES),
            name="checkstack",
            concurrency=concurrency,
            fetch_job_polling_interval=self.settings.poll_interval,
            abort_job_polling_interval=self.settings.poll_interval,
            shutdown_graceful_timeout=self.settings.shutdown_timeout,
            delete_jobs="successful",
            install_signal_handlers=False,
            update_heartbeat_interval=self.settings.heartbeat_interval,
            stalled_worker_timeout=self.settings.stalled_after,
        )
        self.listen(WAKEUP_CHANNEL, self._on_wakeup)
        run = asyncio.create_task(worker.run(), name="procrastinate-worker")
        recovery = asyncio.create_task(self._recover_loop(), name="checkstack-recovery")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            recovery.cancel()
            stopping.cancel()
            worker.stop()
            await asyncio.gather(recovery, stopping, return_exceptions=True)
            await run  # procrastinate's graceful shutdown: finish, or release after the timeout
        if not stop.is_set() and not self._stopping:
            # procrastinate stops itself when one of its side tasks fails (e.g. the database
            # went away): exit non-zero, so a supervisor restarts the worker.
            raise RuntimeError("The procrastinate worker stopped on its own (see the log above)")

    async def stop_worker(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._worker.stop()
        if self._worker_task is not None:
            await asyncio.gather(self._worker_task, return_exceptions=True)
        self._worker = None
        self._worker_task = None

    def _nudge(self) -> None:
        """Have the worker look for due jobs now (procrastinate only wakes itself on inserts
        and every ``poll_interval``; a job deferred for later needs a timer)."""
        event = getattr(self._worker, "_new_job_event", None)
        if isinstance(event, asyncio.Event):
            event.set()

    def wake_at(self, timestamp: float) -> None:
        if self._worker is None:
            return
        loop = asyncio.get_running_loop()
        delay = timestamp - time.time()
        if delay > self.settings.poll_interval:
            return  # the worker polls by then anyway
        timer = loop.call_later(max(delay, 0.0) + 0.002, self._fire_timer)
        self._timers.add(timer)

    def _fire_timer(self) -> None:
        now = asyncio.get_running_loop().time()
        self._timers = {t for t in self._timers if t.when() > now}
        self._nudge()

    def _on_wakeup(self, payload: str) -> None:
        try:
            self.wake_at(float(payload))
        except ValueError:
            logger.warning("Ignoring a malformed wake-up notification")

    async def _recover_loop(self) -> None:
        last_housekeeping = 0.0
        while True:
            await asyncio.sleep(self.settings.recovery_interval)
            try:
                await self.recover_stalled()
                await self._arm_next_due()
                if time.monotonic() - last_housekeeping > HOUSEKEEPING_EVERY:
                    last_housekeeping = time.monotonic()
                    await self.housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("procrastinate recovery pass failed; trying again")

    async def recover_stalled(self) -> list[int]:
        """Hand the running jobs of dead workers to the live ones; their ids.

        A worker is dead when its heartbeat is older than ``stalled_after`` (or it was pruned).
        ``FOR UPDATE SKIP LOCKED`` and the status re-check make concurrent recoveries by several
        workers safe: each job is released once.
        """
        await self.app.job_manager.prune_stalled_workers(self.settings.stalled_after)
        async with self.transaction() as cursor:
            await cursor.execute(
                """
                SELECT job.id FROM procrastinate_jobs job
                 WHERE job.status = 'doing' AND job.queue_name = ANY(%(queues)s)
                   AND (job.worker_id IS NULL OR job.worker_id IN (
                        SELECT id FROM procrastinate_workers
                         WHERE last_heartbeat < now() - make_interval(secs => %(after)s)))
                 ORDER BY job.id
                 FOR UPDATE OF job SKIP LOCKED
                """,
                {"queues": list(QUEUES), "after": self.settings.stalled_after},
            )
            ids = [row["id"] for row in await cursor.fetchall()]
            for job_id in ids:
                await cursor.execute(
                    "SELECT procrastinate_retry_job_v2(%s, now(), NULL, NULL, NULL)", (job_id,)
                )
        if ids:
            logger.warning("Released %d jobs of stalled workers: %s", len(ids), ids)
            self._nudge()
        return ids

    async def _arm_next_due(self) -> None:
        """Timers for jobs deferred while a wake-up notification could not reach us."""
        async with self.transaction() as cursor:
            await cursor.execute(
                """
                SELECT extract(epoch FROM scheduled_at) AS at FROM procrastinate_jobs
                 WHERE status = 'todo' AND queue_name = ANY(%(queues)s)
                   AND scheduled_at > now()
                   AND scheduled_at <= now() + make_interval(secs => %(within)s)
                """,
                {"queues": list(QUEUES), "within": self.settings.recovery_interval * 2},
            )
            for row in await cursor.fetchall():
                self.wake_at(float(row["at"]))

    async def housekeeping(self) -> None:
        """Delete failed jobs past ``keep_failed_days`` and event payloads nobody needs."""
        await self.app.job_manager.delete_old_jobs(
            nb_hours=self.settings.keep_failed_days * 24,
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )
        if self.events is not None:
            await self.events.housekeeping()

    async def workers_alive(self) -> int:
        """Workers with a heartbeat younger than ``stalled_after``."""
        async with self.transaction() as cursor:
            await cursor.execute(
                "SELECT count(*) AS n FROM procrastinate_workers "
                "WHERE last_heartbeat >= now() - make_interval(secs => %s)",
                (self.settings.stalled_after,),
            )
            row = await cursor.fetchone()
        return int(row["n"]) if row else 0

    async def wait_idle(
        self, queue: str, within: float, local: Callable[[], Awaitable[bool]] | None = None
    ) -> None:
        """Poll until no job of ``queue`` runs, is due or awaits a retry (``TimeoutError``)."""
        async with asyncio.timeout(within):
            while True:
                async with self.transaction() as cursor:
                    await cursor.execute(
                        """
                        SELECT count(*) AS n FROM procrastinate_jobs
                         WHERE queue_name = %(queue)s AND (
                               status = 'doing'
                            OR (status = 'todo' AND (scheduled_at IS NULL
                                                     OR scheduled_at <= now()
                                                     OR attempts > 0)))
                        """,
                        {"queue": queue},
                    )
                    row = await cursor.fetchone()
                busy = bool(row and row["n"])
                if not busy and (local is None or await local()):
                    return
                await asyncio.sleep(0.02)
