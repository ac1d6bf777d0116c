"""Jobs: run a registered handler once at a time, at an interval, or on a cron expression.

A plugin registers its job handlers by name before :meth:`JobScheduler.start`, then schedules runs
under a *key*. Keys make scheduling idempotent: scheduling under an existing key replaces the
previous schedule, and :meth:`JobScheduler.cancel` takes a key. A key never runs concurrently with
itself: a run that falls due while the previous one is still going is skipped (interval, cron), and
an overdue schedule runs once, not once per missed slot.

:class:`EmbeddedJobScheduler`, the default, keeps schedules **in memory only**. Plugins therefore
(re)schedule from their own persisted state at startup (e.g. the healthcheck plugin schedules one
interval job per configured check); idempotent keys make that safe to repeat. A persistent,
distributed engine over the same PostgreSQL (e.g. procrastinate) can implement
:class:`JobScheduler` and be selected by configuration without changing plugin code.

All datetimes are aware and in UTC; naive datetimes are rejected with ``ValueError``.
"""

from __future__ import annotations

import asyncio
import builtins
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
from croniter import croniter

__all__ = [
    "EmbeddedJobScheduler",
    "JobHandler",
    "JobRun",
    "JobScheduler",
    "ScheduledJob",
    "UnknownJobError",
]

logger = logging.getLogger("checkstack.jobs")

JobKind = Literal["once", "interval", "cron"]


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job, as its handler receives it."""

    name: str
    """Registered job name, e.g. ``"maintenance.transition"``."""
    key: str
    """The idempotency key the job was scheduled under."""
    payload: dict[str, Any]
    """JSON-compatible payload given at scheduling time (a fresh copy per run)."""
    scheduled_for: datetime
    """When this run was due (aware, UTC)."""
    attempt: int
    """1-based; above 1 only for retries of a failed once-job."""


JobHandler = Callable[[JobRun], Awaitable[None]]
"""An async function running one job."""


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A snapshot of one schedule."""

    name: str
    key: str
    payload: dict[str, Any]
    next_run_at: datetime
    """Next due time (UTC); in the past while a due run waits or runs."""
    kind: JobKind
    interval: timedelta | None
    cron: str | None


class UnknownJobError(ValueError, KeyError):
    """Scheduling names a job that no plugin registered."""

    def __str__(self) -> str:
        # KeyError would render the message quoted.
        return str(self.args[0]) if self.args else ""


@runtime_checkable
class JobScheduler(Protocol):
    """What plugins use to schedule work; implemented by each engine."""

    def register(
        self,
        name: str,
        handler: JobHandler,
        *,
        plugin_id: str,
        timeout: float | None = None,
        max_retries: int = 0,
    ) -> None:
        """Register a handler under a unique job name, before :meth:`start`.

        ``timeout`` (seconds) cancels a run that takes longer; ``max_retries`` applies to once-jobs.
        """
        ...

    async def start(self) -> None:
        """Start running due jobs."""
        ...

    async def stop(self) -> None:
        """Stop scheduling; let running jobs finish for a short while, then cancel them."""
        ...

    async def schedule_once(
        self,
        name: str,
        *,
        key: str,
        run_at: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        """Run ``name`` once at ``run_at`` (``None`` or past: as soon as possible)."""
        ...

    async def schedule_interval(
        self,
        name: str,
        *,
        key: str,
        every: timedelta,
        payload: Mapping[str, Any] | None = None,
        start_at: datetime | None = None,
    ) -> ScheduledJob:
        """Run ``name`` every ``every``, on slots anchored at ``start_at`` (``None``: now)."""
        ...

    async def schedule_cron(
        self,
        name: str,
        *,
        key: str,
        cron: str,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        """Run ``name`` on a 5-field cron expression evaluated in UTC."""
        ...

    async def cancel(self, key: str) -> bool:
        """Remove the schedule under ``key``; ``True`` if there was one."""
        ...

    async def get(self, key: str) -> ScheduledJob | None:
        """The schedule under ``key``, if any."""
        ...

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no job is running and none is due now (for tests)."""
        ...

    async def list(self, prefix: str = "") -> builtins.list[ScheduledJob]:
        """Every schedule whose key starts with ``prefix``, sorted by key."""
        ...


@dataclass(slots=True)
class _JobDef:
    name: str
    handler: JobHandler
    plugin_id: str
    timeout: float | None
    max_retries: int


@dataclass(slots=True, eq=False)
class _Entry:
    """A live schedule. Replaced (never mutated into another key's) when rescheduled."""

    job: _JobDef
    key: str
    raw_payload: bytes  # JSON: each run decodes its own copy
    kind: JobKind
    interval: timedelta | None
    cron: str | None
    due_at: datetime  # exact, so interval slots never drift with float rounding
    attempt: int = 1
    version: int = 0  # bumped on each push, so older heap items for this entry are ignored
    waiting: bool = False  # a once-run fell due while the key was still running

    def snapshot(self) -> ScheduledJob:
        return ScheduledJob(
            name=self.job.name,
            key=self.key,
            payload=msgspec.json.decode(self.raw_payload),
            next_run_at=self.due_at,
            kind=self.kind,
            interval=self.interval,
            cron=self.cron,
        )


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware UTC datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _encode_payload(payload: Mapping[str, Any] | None, name: str) -> bytes:
    if payload is None:
        return b"{}"
    if not isinstance(payload, Mapping):
        raise TypeError(f"Payload of job {name!r} must be a mapping")
    try:
        return msgspec.json.encode(payload)
    except (TypeError, msgspec.EncodeError, ValueError, OverflowError) as exc:
        raise TypeError(f"Payload of job {name!r} is not JSON-serializable: {exc}") from None


def _validate_cron(cron: str) -> None:
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValueError(f"Invalid cron expression {cron!r}: expected 5 fields, evaluated in UTC")


def _next_cron(cron: str, after: datetime) -> datetime:
    nxt: datetime = croniter(cron, after).get_next(datetime)
    return nxt.astimezone(UTC)


def job_definition(
    registered: Mapping[str, _JobDef],
    name: str,
    handler: JobHandler,
    *,
    plugin_id: str,
    timeout: float | None,
    max_retries: int,
) -> _JobDef:
    """Validate a registration against the jobs already ``registered`` (every engine's rules)."""
    if not name or not isinstance(name, str):
        raise ValueError("Job name must be a non-empty string")
    if not callable(handler):
        raise TypeError(f"Handler of job {name!r} is not callable")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout of job {name!r} must be positive")
    if max_retries < 0:
        raise ValueError(f"max_retries of job {name!r} must not be negative")
    existing = registered.get(name)
    if existing is not None:
        raise ValueError(
            f"Job {name!r} of plugin {plugin_id!r} is already registered "
            f"by plugin {existing.plugin_id!r}"
        )
    return _JobDef(name, handler, plugin_id, timeout, max_retries)


async def run_handler(job: _JobDef, run: JobRun, attempts: int) -> bool:
    """Run one job with its timeout; log a failure (never the payload). ``True`` on success.

    ``attempts`` is how many attempts the run has in all (for the log line).
    """
    try:
        if job.timeout is None:
            await job.handler(run)
            return True
        deadline = asyncio.timeout(job.timeout)
        try:
            async with deadline:
                await job.handler(run)
            return True
        except TimeoutError:
            if not deadline.expired():
                raise
            logger.error(
                "job timed out after %ss: job=%s key=%s attempt=%d/%d",
                job.timeout,
                job.name,
                run.key,
                run.attempt,
                attempts,
            )
            return False
    except asyncio.CancelledError:
        raise
    except Exception:
        # Never log the payload: it may hold secrets.
        logger.exception(
            "job failed: job=%s key=%s attempt=%d/%d", job.name, run.key, run.attempt, attempts
        )
        return False


class EmbeddedJobScheduler:
    """The in-process :class:`JobScheduler`: one timer loop over a heap of due times.

    Runs are tasks bounded by a ``concurrency`` semaphore. A failed once-job is retried after
    ``retry_base_delay * 2 ** (attempt - 1)`` seconds (capped at ``retry_max_delay``).
    :meth:`stop` waits up to ``shutdown_timeout`` seconds for running jobs before cancelling them.
    """

    def __init__(
        self,
        *,
        concurrency: int = 64,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 300.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._concurrency = concurrency
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._shutdown_timeout = shutdown_timeout
        self._jobs: dict[str, _JobDef] = {}
        self._entries: dict[str, _Entry] = {}
        self._heap: builtins.list[tuple[float, int, _Entry, int]] = []
        self._seq = itertools.count()
        self._stale = 0  # about how many heap items belong to replaced or cancelled entries
        self._running: dict[str, asyncio.Task[None]] = {}  # key -> its in-flight run
        self._semaphore = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._activity = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    # -- registration -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        handler: JobHandler,
        *,
        plugin_id: str,
        timeout: float | None = None,
        max_retries: int = 0,
    ) -> None:
        """Register a handler under a unique job name, before :meth:`start`."""
        if self._started:
            raise RuntimeError(f"Cannot register job {name!r}: the scheduler has already started")
        self._jobs[name] = job_definition(
            self._jobs, name, handler, plugin_id=plugin_id, timeout=timeout, max_retries=max_retries
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the scheduler loop."""
        if self._started:
            raise RuntimeError("The job scheduler has already started")
        self._started = True
        self._loop_task = asyncio.create_task(self._loop(), name="checkstack-jobs-scheduler")

    async def stop(self) -> None:
        """Stop the loop, wait up to ``shutdown_timeout`` for running jobs, cancel the rest."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = builtins.list(self._running.values())
        if running:
            _, still = await asyncio.wait(running, timeout=self._shutdown_timeout)
            if still:
                logger.warning("job scheduler stopping: cancelling %d running jobs", len(still))
                for task in still:
                    task.cancel()
                await asyncio.gather(*still, return_exceptions=True)

    # -- scheduling -------------------------------------------------------------------------

    async def schedule_once(
        self,
        name: str,
        *,
        key: str,
        run_at: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        """Run ``name`` once at ``run_at`` (``None`` or past: as soon as possible)."""
        job = self._job(name)
        due = _now() if run_at is None else _utc(run_at, "run_at")
        return self._put(_Entry(job, key, _encode_payload(payload, name), "once", None, None, due))

    async def schedule_interval(
        self,
        name: str,
        *,
        key: str,
        every: timedelta,
        payload: Mapping[str, Any] | None = None,
        start_at: datetime | None = None,
    ) -> ScheduledJob:
        """Run ``name`` every ``every`` on slots ``start_at + k * every`` (``start_at`` None: now).

        A ``start_at`` in the past keeps its phase: the latest slot not after now runs at once.
        """
        job = self._job(name)
        if not isinstance(every, timedelta) or every <= timedelta(0):
            raise ValueError(f"every must be a positive timedelta, got {every!r}")
        now = _now()
        due = now if start_at is None else _utc(start_at, "start_at")
        if due < now:
            due += (now - due) // every * every
        raw = _encode_payload(payload, name)
        return self._put(_Entry(job, key, raw, "interval", every, None, due))

    async def schedule_cron(
        self,
        name: str,
        *,
        key: str,
        cron: str,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        """Run ``name`` at each time matching the 5-field ``cron`` expression (UTC)."""
        job = self._job(name)
        _validate_cron(cron)
        raw = _encode_payload(payload, name)
        return self._put(_Entry(job, key, raw, "cron", None, cron, _next_cron(cron, _now())))

    async def cancel(self, key: str) -> bool:
        """Remove the schedule (and any pending retry) under ``key``; a running run finishes."""
        if self._entries.pop(key, None) is None:
            return False
        self._dropped()
        return True

    async def get(self, key: str) -> ScheduledJob | None:
        """The schedule under ``key``, if any."""
        entry = self._entries.get(key)
        return None if entry is None else entry.snapshot()

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no job is running, none is due now and no once-job awaits a retry.

        Returns at once when the scheduler is not running; ``TimeoutError`` after ``timeout``.
        """
        if not self._started or self._stopped:
            return
        async with asyncio.timeout(timeout):
            while self._running or self._has_due(time.time()) or self._retry_pending():
                self._activity.clear()
                # The cap only guards against a missed signal; activity normally wakes us first.
                try:
                    async with asyncio.timeout(0.05):
                        await self._activity.wait()
                except TimeoutError:
                    pass

    async def list(self, prefix: str = "") -> builtins.list[ScheduledJob]:
        """Every schedule whose key starts with ``prefix``, sorted by key."""
        return [
            self._entries[key].snapshot() for key in sorted(self._entries) if key.startswith(prefix)
        ]

    # -- internals --------------------------------------------------------------------------

    def _job(self, name: str) -> _JobDef:
        job = self._jobs.get(name)
        if job is None:
            raise UnknownJobError(f"Unknown job {name!r}: no plugin registered it")
        return job

    def _put(self, entry: _Entry) -> ScheduledJob:
        if not entry.key or not isinstance(entry.key, str):
            raise ValueError("Job key must be a non-empty string")
        # Any heap item of a replaced entry is now stale: the loop checks identity.
        if self._entries.get(entry.key) is not None:
            self._dropped()
        self._entries[entry.key] = entry
        self._push(entry)
        return entry.snapshot()

    def _dropped(self) -> None:
        """Count a stale heap item; compact once they outnumber the live ones."""
        self._stale += 1
        if self._stale > 1024 and self._stale > len(self._heap) // 2:
            # In place: the loop holds a reference to the list.
            self._heap[:] = [i for i in self._heap if self._is_current(i[2], i[3])]
            heapq.heapify(self._heap)
            self._stale = 0

    def _push(self, entry: _Entry) -> None:
        entry.version += 1
        due = entry.due_at.timestamp()
        heapq.heappush(self._heap, (due, next(self._seq), entry, entry.version))
        if self._heap[0][2] is entry:
            self._wake.set()

    def _is_current(self, entry: _Entry, version: int) -> bool:
        return self._entries.get(entry.key) is entry and entry.version == version

    def _retry_pending(self) -> bool:
        return any(e.kind == "once" and e.attempt > 1 for e in self._entries.values())

    def _has_due(self, now: float) -> bool:
        heap = self._heap
        while heap and not self._is_current(heap[0][2], heap[0][3]):
            heapq.heappop(heap)
            self._stale = max(self._stale - 1, 0)
        return bool(heap) and heap[0][0] <= now

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now_at = _now()
            now = now_at.timestamp()
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, _, entry, version = heapq.heappop(heap)
                if not self._is_current(entry, version):
                    self._stale = max(self._stale - 1, 0)
                    continue
                try:
                    self._fire(entry, now_at)
                except Exception:
                    logger.exception("job scheduler failed to fire key=%s", entry.key)
            self._activity.set()
            self._wake.clear()
            timer = None
            if heap:
                timer = loop.call_later(max(heap[0][0] - time.time(), 0.0), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _fire(self, entry: _Entry, now: datetime) -> None:
        """Start a due entry's run, or skip it if its key is still running."""
        if entry.kind == "once":
            if entry.key in self._running:
                entry.waiting = True  # started when the running run of this key ends
                return
            self._start_run(entry)
            return
        if entry.key in self._running:
            logger.warning(
                "job skipped, previous run still running: job=%s key=%s", entry.job.name, entry.key
            )
        else:
            self._start_run(entry)
        # Next slot strictly after now: an overdue schedule runs once, no catch-up burst.
        # max() guarantees progress, so the loop can never fire the same slot twice.
        base = max(now, entry.due_at)
        if entry.kind == "interval":
            assert entry.interval is not None
            entry.due_at += ((base - entry.due_at) // entry.interval + 1) * entry.interval
        else:
            assert entry.cron is not None
            entry.due_at = _next_cron(entry.cron, base)
        self._push(entry)

    def _start_run(self, entry: _Entry) -> None:
        run = JobRun(
            name=entry.job.name,
            key=entry.key,
            payload=msgspec.json.decode(entry.raw_payload),
            scheduled_for=entry.due_at,
            attempt=entry.attempt,
        )
        task = asyncio.create_task(self._run(entry, run), name=f"checkstack-job:{entry.key}")
        self._running[entry.key] = task

    async def _run(self, entry: _Entry, run: JobRun) -> None:
        try:
            async with self._semaphore:
                ok = await self._call(entry, run)
        except asyncio.CancelledError:
            # Stopping: no retry, no "gave up".
            self._running.pop(entry.key, None)
            self._activity.set()
            raise
        self._running.pop(entry.key, None)
        try:
            self._after_run(entry, ok)
        finally:
            self._activity.set()

    async def _call(self, entry: _Entry, run: JobRun) -> bool:
        attempts = entry.job.max_retries + 1 if entry.kind == "once" else 1
        return await run_handler(entry.job, run, attempts)

    def _after_run(self, entry: _Entry, ok: bool) -> None:
        current = self._entries.get(entry.key)
        if entry.kind == "once" and current is entry:
            if ok or entry.attempt > entry.job.max_retries:
                if not ok:
                    logger.error(
                        "job gave up after %d attempts: job=%s key=%s",
                        entry.attempt,
                        entry.job.name,
                        entry.key,
                    )
                del self._entries[entry.key]
            else:
                delay = self._retry_base_delay * 2 ** (entry.attempt - 1)
                entry.attempt += 1
                entry.due_at = _now() + timedelta(seconds=min(delay, self._retry_max_delay))
                self._push(entry)
        if current is not None and current.waiting and not self._stopped:
            current.waiting = False
            self._start_run(current)
