"""The core's :class:`~checkstack_core.jobs.JobScheduler` on procrastinate.

Every schedule is one row of ``procrastinate_checkstack_schedules`` (key, job name, kind,
payload, interval or cron, next due time) and, beside it, exactly one procrastinate job for its
next run (``job_id``), deferred with ``scheduled_at`` at the due time and ``lock`` = the key.
Schedules therefore survive restarts and are shared by every process of a deployment.

- **Idempotent keys**: scheduling under a key replaces the row and its pending job in one
  transaction, under an advisory lock on the key (so concurrent schedulers of one key, in any
  process, apply one after the other); ``cancel`` deletes both.
- **Once per due time, in the whole deployment**: procrastinate hands each job to one worker.
  A run first checks that its job is still the row's ``job_id``: a job replaced or cancelled
  after a worker fetched it does nothing.
- **Interval and cron**: a run defers the next slot's job (strictly after now, so an overdue
  schedule runs once) in the transaction that claims it, before the handler runs, so a worker
  killed during a run loses no later slot.
- **A key never runs concurrently with itself**: the procrastinate ``lock`` keeps the next job
  waiting while one runs; a slot that fell due while the previous run was still going is skipped
  (the row's ``last_ended_at`` says so), as in the embedded engine.
- **Retries** (once-jobs, ``max_retries``) back off ``retry_base_delay * 2 ** (attempt - 1)``
  seconds; a run that timed out counts as failed.
- **Stalled runs**: a run held by a worker that stopped heartbeating is released to another worker
  (:meth:`Runtime.recover_stalled`); a once-job runs again, an interval run is not repeated (its
  next slot is already queued).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from procrastinate.jobs import Job

from checkstack_core.jobs import (
    JobHandler,
    JobKind,
    JobRun,
    ScheduledJob,
    UnknownJobError,
    _encode_payload,
    _JobDef,
    _next_cron,
    _utc,
    _validate_cron,
    job_definition,
    run_handler,
)

from .runtime import JOB_TASK, JOBS_QUEUE, Cursor, RetryLater, Runtime, due_priority

logger = logging.getLogger("checkstack.jobs")

TABLE = "procrastinate_checkstack_schedules"
_COLUMNS = "key, name, kind, payload, every_us, cron, next_run_at, job_id, last_ended_at"
_LIST = f'SELECT {_COLUMNS} FROM {TABLE} WHERE starts_with(key, %s) ORDER BY key COLLATE "C"'


def _now() -> datetime:
    return datetime.now(UTC)


def _every(row: Mapping[str, Any]) -> timedelta | None:
    return None if row["every_us"] is None else timedelta(microseconds=row["every_us"])


def _snapshot(row: Mapping[str, Any]) -> ScheduledJob:
    return ScheduledJob(
        name=row["name"],
        key=row["key"],
        payload=row["payload"],
        next_run_at=row["next_run_at"].astimezone(UTC),
        kind=row["kind"],
        interval=_every(row),
        cron=row["cron"],
    )


def next_slot(row: Mapping[str, Any], slot: datetime, now: datetime) -> datetime:
    """The schedule's first due time strictly after ``max(now, slot)``."""
    base = max(now, slot)
    every = _every(row)
    if every is not None:
        return slot + ((base - slot) // every + 1) * every
    return _next_cron(row["cron"], base)


class ProcrastinateJobScheduler:
    """See the module docstring. Built by the engine plugin per host (``jobs_engine``)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        runtime.jobs = self
        self._jobs: dict[str, _JobDef] = {}
        self._started = False

    # -- protocol -------------------------------------------------------------------------

    def register(
        self,
        name: str,
        handler: JobHandler,
        *,
        plugin_id: str,
        timeout: float | None = None,
        max_retries: int = 0,
    ) -> None:
        if self._started:
            raise RuntimeError(f"Cannot register job {name!r}: the scheduler has already started")
        self._jobs[name] = job_definition(
            self._jobs, name, handler, plugin_id=plugin_id, timeout=timeout, max_retries=max_retries
        )

    async def start(self) -> None:
        """Connect; jobs run in ``checkstack worker`` processes (:meth:`run_worker`)."""
        if self._started:
            raise RuntimeError("The job scheduler has already started")
        self._started = True
        await self._rt.start()

    async def run_worker(self, *, concurrency: int, stop: Any) -> None:
        """Run due jobs (and work-queue events) in this process until ``stop`` is set."""
        await self._rt.run_worker(concurrency=concurrency, stop=stop)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._rt.stop()

    async def schedule_once(
        self,
        name: str,
        *,
        key: str,
        run_at: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        self._job(name)
        due = _now() if run_at is None else _utc(run_at, "run_at")
        return await self._put(key, name, "once", _encode_payload(payload, name), due)

    async def schedule_interval(
        self,
        name: str,
        *,
        key: str,
        every: timedelta,
        payload: Mapping[str, Any] | None = None,
        start_at: datetime | None = None,
    ) -> ScheduledJob:
        self._job(name)
        if not isinstance(every, timedelta) or every <= timedelta(0):
            raise ValueError(f"every must be a positive timedelta, got {every!r}")
        now = _now()
        due = now if start_at is None else _utc(start_at, "start_at")
        if due < now:
            due += (now - due) // every * every
        raw = _encode_payload(payload, name)
        return await self._put(key, name, "interval", raw, due, every=every)

    async def schedule_cron(
        self,
        name: str,
        *,
        key: str,
        cron: str,
        payload: Mapping[str, Any] | None = None,
    ) -> ScheduledJob:
        self._job(name)
        _validate_cron(cron)
        raw = _encode_payload(payload, name)
        due = _next_cron(cron, _now())
        return await self._put(key, name, "cron", raw, due, cron=cron)

    async def cancel(self, key: str) -> bool:
        """Remove the schedule and its pending run; a run in progress finishes."""
        async with self._rt.transaction() as cursor:
            await self._rt.lock_key(cursor, key)
            await cursor.execute(f"DELETE FROM {TABLE} WHERE key = %s RETURNING job_id", (key,))
            row = await cursor.fetchone()
            if row is None:
                return False
            await self._drop_pending(cursor, row["job_id"])
        return True

    async def get(self, key: str) -> ScheduledJob | None:
        async with self._rt.transaction() as cursor:
            await cursor.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE key = %s", (key,))
            row = await cursor.fetchone()
        return None if row is None else _snapshot(row)

    async def list(self, prefix: str = "") -> builtins.list[ScheduledJob]:
        async with self._rt.transaction() as cursor:
            await cursor.execute(
                _LIST,
                (prefix,),
            )
            rows = await cursor.fetchall()
        return [_snapshot(row) for row in rows]

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no job runs, none is due now and none awaits a retry, in any worker."""
        if not self._started:
            return
        await self._rt.wait_idle(JOBS_QUEUE, timeout)

    # -- internals ------------------------------------------------------------------------

    def _job(self, name: str) -> _JobDef:
        job = self._jobs.get(name)
        if job is None:
            raise UnknownJobError(f"Unknown job {name!r}: no plugin registered it")
        return job

    def _deferrable(self, key: str, name: str, due: datetime) -> Job:
        return Job(
            queue=JOBS_QUEUE,
            task_name=JOB_TASK,
            lock=key,
            queueing_lock=None,
            task_kwargs={"key": key, "name": name, "slot": due.isoformat()},
            scheduled_at=due,
            priority=due_priority(due),
        )

    async def _drop_pending(self, cursor: Cursor, job_id: int | None) -> None:
        """Delete the schedule's pending job; one already running is left to finish."""
        if job_id is not None:
            await self._rt.app.job_manager.cancel_job_by_id_async(
                job_id, delete_job=True, connection=cursor.connection
            )

    async def _put(
        self,
        key: str,
        name: str,
        kind: JobKind,
        raw: bytes,
        due: datetime,
        *,
        every: timedelta | None = None,
        cron: str | None = None,
    ) -> ScheduledJob:
        if not key or not isinstance(key, str):
            raise ValueError("Job key must be a non-empty string")
        every_us = None if every is None else every // timedelta(microseconds=1)
        async with self._rt.transaction() as cursor:
            await self._rt.lock_key(cursor, key)
            await cursor.execute(f"SELECT job_id FROM {TABLE} WHERE key = %s", (key,))
            old = await cursor.fetchone()
            if old is not None:
                await self._drop_pending(cursor, old["job_id"])
            [job_id] = await self._rt.defer(cursor, [self._deferrable(key, name, due)])
            await cursor.execute(
                f"""
                INSERT INTO {TABLE} (key, name, kind, payload, every_us, cron, next_run_at, job_id)
                VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)
                ON CONFLICT (key) DO UPDATE SET
                    name = excluded.name, kind = excluded.kind, payload = excluded.payload,
                    every_us = excluded.every_us, cron = excluded.cron,
                    next_run_at = excluded.next_run_at, job_id = excluded.job_id
                RETURNING {_COLUMNS}
                """,
                (key, name, kind, raw.decode(), every_us, cron, due, job_id),
            )
            row = await cursor.fetchone()
        assert row is not None
        return _snapshot(row)

    async def run(self, job: Job) -> None:
        """Run one procrastinate job of the ``checkstack.job`` task (in a worker)."""
        assert job.id is not None
        args = job.task_kwargs
        key, slot = str(args["key"]), datetime.fromisoformat(str(args["slot"]))
        skipped = False
        due: datetime | None = None  # the next slot, for interval and cron schedules
        async with self._rt.transaction() as cursor:
            await self._rt.lock_key(cursor, key)
            await cursor.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE key = %s", (key,))
            row = await cursor.fetchone()
            if row is None or row["job_id"] != job.id:
                return  # cancelled or replaced before this run started
            if row["kind"] != "once":
                last_ended = row["last_ended_at"]
                skipped = last_ended is not None and last_ended > slot
                due = next_slot(row, slot, _now())
                [next_id] = await self._rt.defer(cursor, [self._deferrable(key, row["name"], due)])
                await cursor.execute(
                    f"UPDATE {TABLE} SET job_id = %s, next_run_at = %s WHERE key = %s",
                    (next_id, due, key),
                )
        definition = self._jobs.get(row["name"])
        if definition is None:
            logger.error("job %s (key=%s) is not registered in this worker", row["name"], key)
            return
        if skipped:
            logger.warning(
                "job skipped, previous run still running: job=%s key=%s", row["name"], key
            )
            return
        once = row["kind"] == "once"
        attempts = definition.max_retries + 1 if once else 1
        run = JobRun(
            name=definition.name,
            key=key,
            payload=msgspec.json.decode(msgspec.json.encode(row["payload"])),
            scheduled_for=slot,
            attempt=job.attempts + 1,
        )
        ok = await run_handler(definition, run, attempts)
        if not once:
            ended = _now()
            assert due is not None
            if ended >= due:
                # The next slot fell due while this run went on: that slot is skipped. Otherwise
                # nothing to record (a run that ended before the next slot never skips it).
                async with self._rt.transaction() as cursor:
                    await cursor.execute(
                        f"UPDATE {TABLE} SET last_ended_at = %s WHERE key = %s", (ended, key)
                    )
            return
        retry_at: datetime | None = None
        async with self._rt.transaction() as cursor:  # conditional on job_id: no lock needed
            if ok or run.attempt >= attempts:
                if not ok:
                    logger.error(
                        "job gave up after %d attempts: job=%s key=%s", run.attempt, run.name, key
                    )
                await cursor.execute(
                    f"DELETE FROM {TABLE} WHERE key = %s AND job_id = %s", (key, job.id)
                )
            else:
                delay = self._rt.settings.retry_base_delay * 2 ** (run.attempt - 1)
                retry_at = _now() + timedelta(seconds=min(delay, self._rt.settings.retry_max_delay))
                await cursor.execute(
                    f"UPDATE {TABLE} SET next_run_at = %s WHERE key = %s AND job_id = %s "
                    "RETURNING key",
                    (retry_at, key, job.id),
                )
                if await cursor.fetchone() is None:
                    retry_at = None  # replaced or cancelled meanwhile: no retry
        if retry_at is not None:
            self._rt.wake_at(retry_at.timestamp())
            raise RetryLater(retry_at)

    async def status(self) -> dict[str, Any]:
        """For ``/readyz``: how many workers heartbeat (0: no job runs anywhere)."""
        return {"workers": await self._rt.workers_alive()}
