"""The embedded job scheduler: once, interval and cron jobs, keys, overlap, retries (SPEC §8)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from checkstack_core.jobs import (
    EmbeddedJobScheduler,
    JobRun,
    JobScheduler,
    UnknownJobError,
)

TICK = timedelta(seconds=0.05)


@pytest.fixture
async def scheduler() -> AsyncIterator[EmbeddedJobScheduler]:
    scheduler = EmbeddedJobScheduler(retry_base_delay=0.01, shutdown_timeout=0.2)
    yield scheduler
    await scheduler.stop()


class Recorder:
    """A job handler recording its runs (and their wall-clock start and end)."""

    def __init__(self, *, fail_times: int = 0, sleep: Callable[[JobRun], float] | None = None):
        self.runs: list[JobRun] = []
        self.started: list[float] = []
        self.ended: list[float] = []
        self.fail_times = fail_times
        self.sleep = sleep
        self.active = 0
        self.peak = 0

    async def __call__(self, run: JobRun) -> None:
        self.runs.append(run)
        self.started.append(time.time())
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.sleep is not None:
                await asyncio.sleep(self.sleep(run))
            if len(self.runs) <= self.fail_times:
                raise RuntimeError(f"boom {len(self.runs)}")
        finally:
            self.active -= 1
            self.ended.append(time.time())


async def wait_until(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``predicate`` (the handlers' records) until it holds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def now() -> datetime:
    return datetime.now(UTC)


def test_embedded_scheduler_implements_the_protocol() -> None:
    assert isinstance(EmbeddedJobScheduler(), JobScheduler)


async def test_registration_rules(scheduler: EmbeddedJobScheduler) -> None:
    scheduler.register("maintenance.transition", Recorder(), plugin_id="maintenance")
    with pytest.raises(ValueError, match=r"'other'.*'maintenance'"):
        scheduler.register("maintenance.transition", Recorder(), plugin_id="other")
    with pytest.raises(ValueError, match="timeout"):
        scheduler.register("x.y", Recorder(), plugin_id="x", timeout=0)

    with pytest.raises(UnknownJobError, match=r"Unknown job 'nope\.job'") as info:
        await scheduler.schedule_once("nope.job", key="k")
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)

    await scheduler.start()
    with pytest.raises(RuntimeError, match="already started"):
        scheduler.register("late.job", Recorder(), plugin_id="late")


async def test_once_job_runs_once_with_its_payload(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder()
    scheduler.register("m.transition", handler, plugin_id="m")
    await scheduler.start()

    before = now()
    job = await scheduler.schedule_once("m.transition", key="m:1", payload={"id": "w1"})
    assert (job.kind, job.interval, job.cron, job.payload) == ("once", None, None, {"id": "w1"})
    await scheduler.drain()

    assert len(handler.runs) == 1
    run = handler.runs[0]
    assert (run.name, run.key, run.payload, run.attempt) == ("m.transition", "m:1", {"id": "w1"}, 1)
    assert before <= run.scheduled_for <= now()
    assert run.scheduled_for.tzinfo is UTC
    assert await scheduler.get("m:1") is None  # finished once-jobs are gone


async def test_once_job_waits_for_its_time_and_past_times_run_at_once(
    scheduler: EmbeddedJobScheduler,
) -> None:
    handler = Recorder()
    scheduler.register("m.transition", handler, plugin_id="m")
    await scheduler.start()

    due = now() + timedelta(seconds=0.1)
    await scheduler.schedule_once("m.transition", key="future", run_at=due)
    await scheduler.schedule_once("m.transition", key="past", run_at=now() - timedelta(days=1))
    await wait_until(lambda: len(handler.runs) == 1)
    assert handler.runs[0].key == "past"

    await wait_until(lambda: len(handler.runs) == 2)
    assert handler.runs[1].key == "future"
    assert handler.runs[1].scheduled_for == due
    assert handler.started[1] >= due.timestamp()


async def test_scheduling_under_a_key_replaces_the_previous_schedule(
    scheduler: EmbeddedJobScheduler,
) -> None:
    handler, other = Recorder(), Recorder()
    scheduler.register("m.transition", handler, plugin_id="m")
    scheduler.register("m.other", other, plugin_id="m")
    await scheduler.start()

    await scheduler.schedule_once("m.transition", key="k", payload={"v": 1})
    await scheduler.schedule_once(
        "m.transition", key="k", run_at=now() + timedelta(seconds=0.05), payload={"v": 2}
    )
    assert (await scheduler.get("k")).payload == {"v": 2}  # type: ignore[union-attr]
    await asyncio.sleep(0.02)
    assert handler.runs == []
    await wait_until(lambda: len(handler.runs) == 1)

    # Replacing an interval schedule by another kind (and job) stops the interval.
    await scheduler.schedule_interval("m.transition", key="i", every=TICK)
    await wait_until(lambda: len(handler.runs) == 2)
    await scheduler.schedule_once("m.other", key="i", run_at=now() + timedelta(seconds=0.1))
    await wait_until(lambda: len(other.runs) == 1)
    await scheduler.drain()
    assert [(r.key, r.payload) for r in handler.runs] == [("k", {"v": 2}), ("i", {})]
    assert [r.key for r in other.runs] == ["i"]
    assert await scheduler.get("i") is None


async def test_cancel(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder()
    scheduler.register("m.transition", handler, plugin_id="m")
    await scheduler.start()

    await scheduler.schedule_once("m.transition", key="k", run_at=now() + timedelta(seconds=0.05))
    await scheduler.schedule_interval("m.transition", key="i", every=TICK)
    await wait_until(lambda: len(handler.runs) == 1)  # the interval's first run

    assert await scheduler.cancel("k") is True
    assert await scheduler.cancel("i") is True
    assert await scheduler.cancel("k") is False
    assert await scheduler.get("k") is None
    await asyncio.sleep(0.15)
    assert [r.key for r in handler.runs] == ["i"]


async def test_interval_job_runs_on_its_slots(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder()
    scheduler.register("h.check", handler, plugin_id="h")
    await scheduler.start()

    start = now() + timedelta(seconds=0.02)
    job = await scheduler.schedule_interval(
        "h.check", key="h:1", every=TICK, start_at=start, payload={"checkId": 1}
    )
    assert (job.kind, job.interval, job.next_run_at) == ("interval", TICK, start)
    await wait_until(lambda: len(handler.runs) >= 4)

    slots = [r.scheduled_for for r in handler.runs[:4]]
    assert_on_the_grid(handler, start)
    assert all(r.attempt == 1 and r.payload == {"checkId": 1} for r in handler.runs)
    assert (await scheduler.get("h:1")).next_run_at > slots[3]  # type: ignore[union-attr]


def assert_on_the_grid(handler: Recorder, start: datetime) -> None:
    """The runs fall on ``start + k * TICK``, once each, in order, the first at ``start``.

    A slot may be skipped only as the module docstring of ``checkstack_core.jobs`` says: when the
    scheduler reached the previous run so late that the next slot was already past. The next slot
    is chosen when a run is dispatched, before its handler starts, so a skipped slot is explained
    by the previous handler's start time; a scheduler skipping slots on a quiet loop fails here.
    """
    slots = [r.scheduled_for for r in handler.runs]
    assert slots[0] == start
    steps = [(later - earlier) / TICK for earlier, later in itertools.pairwise(slots)]
    assert all(step >= 1 and step == int(step) for step in steps), steps
    for index, step in enumerate(steps):
        if step > 1:
            slot_before_the_next = (slots[index + 1] - TICK).timestamp()
            assert handler.started[index] >= slot_before_the_next, (index, steps)


async def test_interval_with_past_start_keeps_its_phase(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder()
    scheduler.register("h.check", handler, plugin_id="h")
    anchor = now() - timedelta(seconds=10.013)

    job = await scheduler.schedule_interval(
        "h.check", key="h:1", every=timedelta(seconds=1), start_at=anchor
    )
    assert now() - timedelta(seconds=1) < job.next_run_at <= now()
    assert (job.next_run_at - anchor) % timedelta(seconds=1) < timedelta(milliseconds=1)

    await scheduler.start()
    await scheduler.drain()
    assert [r.scheduled_for for r in handler.runs] == [job.next_run_at]


async def test_an_interval_run_is_skipped_while_the_previous_one_runs(
    scheduler: EmbeddedJobScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder(sleep=lambda run: 0.12)
    scheduler.register("h.check", handler, plugin_id="h")
    await scheduler.start()

    with caplog.at_level(logging.WARNING, logger="checkstack.jobs"):
        start = now()
        await scheduler.schedule_interval("h.check", key="h:1", every=TICK, start_at=start)
        await wait_until(lambda: len(handler.ended) >= 2)
        await scheduler.cancel("h:1")

    assert handler.peak == 1
    # Runs never overlap, and the slots that fell due during a run were skipped.
    assert handler.started[1] >= handler.ended[0]
    gap = handler.runs[1].scheduled_for - handler.runs[0].scheduled_for
    assert gap >= 2 * TICK
    assert "skipped" in caplog.text and "h:1" in caplog.text


async def test_no_catch_up_burst_after_a_long_run(scheduler: EmbeddedJobScheduler) -> None:
    # The first run spans over six slots; afterwards the job goes on at its rhythm.
    handler = Recorder(sleep=lambda run: 0.32 if run.scheduled_for == start else 0)
    scheduler.register("h.check", handler, plugin_id="h")
    await scheduler.start()

    start = now()
    await scheduler.schedule_interval("h.check", key="h:1", every=TICK, start_at=start)
    await wait_until(lambda: len(handler.runs) >= 3)
    await scheduler.cancel("h:1")

    # Catching up would run the missed slots start + TICK, start + 2 * TICK... right away.
    slots = [r.scheduled_for for r in handler.runs[:3]]
    assert slots[1] - slots[0] >= 6 * TICK
    assert slots[1].timestamp() >= handler.ended[0] - 0.015
    assert slots[2] - slots[1] == TICK
    assert handler.peak == 1


async def test_an_overdue_interval_runs_once_not_once_per_missed_slot(
    scheduler: EmbeddedJobScheduler,
) -> None:
    handler = Recorder()
    scheduler.register("h.check", handler, plugin_id="h")
    await scheduler.start()

    start = now() + timedelta(seconds=0.02)
    await scheduler.schedule_interval("h.check", key="h:1", every=TICK, start_at=start)
    time.sleep(0.3)  # a stalled event loop: about six slots go by  # noqa: ASYNC251
    unblocked = time.time()
    await wait_until(lambda: len(handler.runs) >= 2)
    await scheduler.cancel("h:1")

    # One run for the overdue slot, then the first slot after the stall; none in between.
    assert handler.runs[0].scheduled_for == start
    assert handler.started[0] >= unblocked
    assert handler.runs[1].scheduled_for.timestamp() > unblocked
    assert (handler.runs[1].scheduled_for - start) % TICK == timedelta(0)


async def test_a_key_never_runs_concurrently_with_itself(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder(sleep=lambda run: 0.08 if run.payload["n"] == 1 else 0)
    scheduler.register("m.transition", handler, plugin_id="m")
    await scheduler.start()

    await scheduler.schedule_once("m.transition", key="k", payload={"n": 1})
    await wait_until(lambda: len(handler.runs) == 1)
    await scheduler.schedule_once("m.transition", key="k", payload={"n": 2})  # due now
    await scheduler.drain()

    assert [r.payload["n"] for r in handler.runs] == [1, 2]
    assert handler.peak == 1
    assert handler.started[1] >= handler.ended[0]


async def test_timeout_cancels_the_run_and_is_retried(
    scheduler: EmbeddedJobScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled = 0

    async def stuck(run: JobRun) -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    scheduler.register("m.slow", stuck, plugin_id="m", timeout=0.05, max_retries=1)
    await scheduler.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.jobs"):
        await scheduler.schedule_once("m.slow", key="k", payload={"password": "s3cret"})
        await scheduler.drain()

    assert cancelled == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "checkstack.jobs"]
    assert "timed out" in messages[0] and "key=k" in messages[0] and "attempt=1/2" in messages[0]
    assert "attempt=2/2" in messages[1]
    assert "gave up" in messages[2]
    assert "s3cret" not in caplog.text
    assert await scheduler.get("k") is None


async def test_failed_once_job_is_retried_with_attempt_numbers(
    scheduler: EmbeddedJobScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder(fail_times=2)
    scheduler.register("m.flaky", handler, plugin_id="m", max_retries=3)
    await scheduler.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.jobs"):
        await scheduler.schedule_once("m.flaky", key="k")
        await scheduler.drain()

    assert [r.attempt for r in handler.runs] == [1, 2, 3]
    failures = [r for r in caplog.records if r.name == "checkstack.jobs"]
    assert len(failures) == 2
    assert "job=m.flaky" in failures[0].getMessage() and failures[0].exc_info is not None
    assert await scheduler.get("k") is None


async def test_once_job_without_retries_runs_once(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder(fail_times=5)
    scheduler.register("m.flaky", handler, plugin_id="m")
    await scheduler.start()

    await scheduler.schedule_once("m.flaky", key="k")
    await scheduler.drain()

    assert len(handler.runs) == 1
    assert await scheduler.get("k") is None


async def test_failed_interval_runs_are_not_retried(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder(fail_times=100)
    scheduler.register("h.check", handler, plugin_id="h", max_retries=5)
    await scheduler.start()

    await scheduler.schedule_interval("h.check", key="h:1", every=TICK)
    await wait_until(lambda: len(handler.runs) >= 3)
    await scheduler.cancel("h:1")

    assert [r.attempt for r in handler.runs[:3]] == [1, 1, 1]
    gaps = [b.scheduled_for - a.scheduled_for for a, b in itertools.pairwise(handler.runs[:3])]
    assert gaps == [TICK, TICK]


async def test_cron_next_run_is_computed_in_utc(scheduler: EmbeddedJobScheduler) -> None:
    handler = Recorder()
    scheduler.register("m.report", handler, plugin_id="m")
    await scheduler.start()

    before = now()
    job = await scheduler.schedule_cron("m.report", key="c", cron="*/5 * * * *", payload={"a": 1})
    assert (job.kind, job.cron, job.interval) == ("cron", "*/5 * * * *", None)
    nxt = job.next_run_at
    assert nxt.tzinfo is UTC
    assert nxt.minute % 5 == 0 and nxt.second == 0 and nxt.microsecond == 0
    assert before < nxt <= before + timedelta(minutes=5)

    # Make it due now (white box: minutes are too long for a test) and see it run and move on.
    entry = scheduler._entries["c"]
    entry.due_at = now()
    scheduler._push(entry)
    await wait_until(lambda: len(handler.runs) == 1)
    await scheduler.drain()
    after = (await scheduler.get("c")).next_run_at  # type: ignore[union-attr]
    assert after.minute % 5 == 0 and after.second == 0
    assert now() < after <= now() + timedelta(minutes=5)
    assert handler.runs[0].payload == {"a": 1}


@pytest.mark.parametrize("cron", ["not a cron", "* * * *", "*/5 * * * * *", "61 * * * *", ""])
async def test_invalid_cron_is_rejected(scheduler: EmbeddedJobScheduler, cron: str) -> None:
    scheduler.register("m.report", Recorder(), plugin_id="m")
    with pytest.raises(ValueError, match="Invalid cron"):
        await scheduler.schedule_cron("m.report", key="c", cron=cron)
    assert await scheduler.get("c") is None


async def test_only_aware_datetimes_are_accepted(scheduler: EmbeddedJobScheduler) -> None:
    scheduler.register("m.job", Recorder(), plugin_id="m")
    naive = datetime(2030, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="aware UTC"):
        await scheduler.schedule_once("m.job", key="k", run_at=naive)
    with pytest.raises(ValueError, match="aware UTC"):
        await scheduler.schedule_interval("m.job", key="k", every=TICK, start_at=naive)
    with pytest.raises(ValueError, match="positive"):
        await scheduler.schedule_interval("m.job", key="k", every=timedelta(0))
    assert await scheduler.list() == []

    # An aware time in another zone is the same instant, reported in UTC.
    paris = datetime(2030, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    job = await scheduler.schedule_once("m.job", key="k", run_at=paris)
    assert job.next_run_at == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert job.next_run_at.tzinfo is UTC


async def test_payload_must_be_json_and_each_run_gets_a_copy(
    scheduler: EmbeddedJobScheduler,
) -> None:
    seen: list[dict[str, object]] = []

    async def vandal(run: JobRun) -> None:
        seen.append({k: list(v) for k, v in run.payload.items()})
        run.payload["items"].append("x")

    scheduler.register("m.job", vandal, plugin_id="m")
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await scheduler.schedule_once("m.job", key="k", payload={"bad": object()})

    payload = {"items": ["a"]}
    await scheduler.schedule_interval("m.job", key="k", every=TICK, payload=payload)
    payload["items"].append("late")
    await scheduler.start()
    await wait_until(lambda: len(seen) >= 2)

    assert seen[:2] == [{"items": ["a"]}, {"items": ["a"]}]
    assert (await scheduler.get("k")).payload == {"items": ["a"]}  # type: ignore[union-attr]


async def test_get_and_list(scheduler: EmbeddedJobScheduler) -> None:
    scheduler.register("h.check", Recorder(), plugin_id="h")
    later = now() + timedelta(hours=1)
    await scheduler.schedule_once("h.check", key="h:2", run_at=later)
    await scheduler.schedule_interval("h.check", key="h:1", every=timedelta(minutes=1))
    await scheduler.schedule_cron("h.check", key="m:1", cron="0 3 * * *")

    assert [j.key for j in await scheduler.list()] == ["h:1", "h:2", "m:1"]
    assert [j.key for j in await scheduler.list("h:")] == ["h:1", "h:2"]
    job = await scheduler.get("h:2")
    assert job is not None and job.next_run_at == later and job.name == "h.check"
    assert await scheduler.get("missing") is None


async def test_jobs_scheduled_before_start_run_after_start(
    scheduler: EmbeddedJobScheduler,
) -> None:
    handler = Recorder()
    scheduler.register("m.job", handler, plugin_id="m")
    await scheduler.schedule_once("m.job", key="k")
    await scheduler.drain()  # not started: returns at once
    await asyncio.sleep(0.02)
    assert handler.runs == []

    await scheduler.start()
    await scheduler.drain()
    assert len(handler.runs) == 1


async def test_runs_are_bounded_by_concurrency() -> None:
    scheduler = EmbeddedJobScheduler(concurrency=2)
    handler = Recorder(sleep=lambda run: 0.03)
    scheduler.register("m.job", handler, plugin_id="m")
    await scheduler.start()

    for i in range(6):
        await scheduler.schedule_once("m.job", key=f"k{i}")
    await scheduler.drain()
    await scheduler.stop()

    assert len(handler.runs) == 6
    assert handler.peak == 2


async def test_stop_cancels_running_jobs_after_the_grace_period() -> None:
    scheduler = EmbeddedJobScheduler(shutdown_timeout=0.05)
    cancelled = asyncio.Event()

    async def stuck(run: JobRun) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.register("m.job", stuck, plugin_id="m")
    await scheduler.start()
    await scheduler.schedule_once("m.job", key="k")
    await asyncio.sleep(0.02)

    await scheduler.stop()
    assert cancelled.is_set()


async def test_replaced_and_cancelled_schedules_do_not_pile_up(
    scheduler: EmbeddedJobScheduler,
) -> None:
    handler = Recorder()
    scheduler.register("h.check", handler, plugin_id="h")
    await scheduler.start()
    later = now() + timedelta(hours=1)

    for i in range(3000):
        await scheduler.schedule_once("h.check", key="same", run_at=later, payload={"i": i})
    for i in range(3000):
        await scheduler.schedule_once("h.check", key=f"k{i}", run_at=later)
        await scheduler.cancel(f"k{i}")

    assert [j.payload for j in await scheduler.list()] == [{"i": 2999}]
    assert len(scheduler._heap) < 3000  # white box: stale heap items get compacted
