"""The behaviour every engine promises (``JobScheduler`` and ``EventBus`` of the core), run
against the embedded engines and the procrastinate engine alike (``engines`` is parametrised).

Times are generous multiples of ``TICK``: procrastinate runs through PostgreSQL and a worker, so
a run starts some milliseconds after its due time. Assertions are on what ran, with which
``scheduled_for``, payload and attempt, never on how fast.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from checkstack_core.events import DeliveryMode, Event, EventBus, Subscription
from checkstack_core.jobs import JobRun, JobScheduler, UnknownJobError

if TYPE_CHECKING:
    from conftest import Engines  # this folder's conftest.py (fixtures only at run time)

TICK = timedelta(seconds=0.4)
WQ = DeliveryMode.WORK_QUEUE


class Recorder:
    """A job handler recording its runs with their wall-clock start and end."""

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


class Handler:
    """An event handler recording what it got; fails its first ``fail_times`` calls."""

    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Event] = []
        self.calls = 0
        self.fail_times = fail_times

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise RuntimeError(f"boom {self.calls}")
        self.events.append(event)


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def now() -> datetime:
    return datetime.now(UTC)


def test_engines_implement_the_protocols(engines: Engines) -> None:
    process = engines.process()
    assert isinstance(process.jobs, JobScheduler)
    assert isinstance(process.events, EventBus)


# -- jobs -------------------------------------------------------------------------------------


async def test_once_job_runs_once_with_its_payload(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("m.transition", handler, plugin_id="m")
    with pytest.raises(UnknownJobError, match=r"Unknown job 'nope\.job'"):
        await p.jobs.schedule_once("nope.job", key="k")
    await p.start()

    before = now()
    job = await p.jobs.schedule_once("m.transition", key="m:1", payload={"id": "w1"})
    assert (job.kind, job.interval, job.cron, job.payload) == ("once", None, None, {"id": "w1"})
    await wait_until(lambda: len(handler.runs) == 1)
    await p.jobs.drain()

    run = handler.runs[0]
    assert (run.name, run.key, run.payload, run.attempt) == ("m.transition", "m:1", {"id": "w1"}, 1)
    assert before <= run.scheduled_for <= now()
    assert await p.jobs.get("m:1") is None
    await asyncio.sleep(TICK.total_seconds())
    assert len(handler.runs) == 1


async def test_once_job_waits_for_its_time_and_past_times_run_at_once(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("m.transition", handler, plugin_id="m")
    await p.start()

    due = now() + 2 * TICK
    await p.jobs.schedule_once("m.transition", key="future", run_at=due)
    await p.jobs.schedule_once("m.transition", key="past", run_at=now() - timedelta(days=1))
    await wait_until(lambda: len(handler.runs) == 2)
    assert [r.key for r in handler.runs] == ["past", "future"]
    assert handler.runs[1].scheduled_for == due
    assert handler.started[1] >= due.timestamp()


async def test_scheduling_under_a_key_replaces_the_previous_schedule(engines: Engines) -> None:
    p = engines.process()
    handler, other = Recorder(), Recorder()
    p.jobs.register("m.transition", handler, plugin_id="m")
    p.jobs.register("m.other", other, plugin_id="m")
    await p.start()

    await p.jobs.schedule_once("m.transition", key="k", run_at=now() + TICK, payload={"v": 1})
    await p.jobs.schedule_once("m.transition", key="k", run_at=now() + TICK, payload={"v": 2})
    assert (await p.jobs.get("k")).payload == {"v": 2}  # type: ignore[union-attr]
    await wait_until(lambda: len(handler.runs) == 1)

    # Replacing an interval schedule by another kind (and job) stops the interval.
    await p.jobs.schedule_interval("m.transition", key="i", every=TICK)
    await wait_until(lambda: len(handler.runs) == 2)
    await p.jobs.schedule_once("m.other", key="i", run_at=now() + TICK)
    await wait_until(lambda: len(other.runs) == 1)
    await asyncio.sleep(2 * TICK.total_seconds())
    await p.jobs.drain()
    assert [(r.key, r.payload) for r in handler.runs] == [("k", {"v": 2}), ("i", {})]
    assert [r.key for r in other.runs] == ["i"]
    assert await p.jobs.get("i") is None


async def test_cancel(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("m.transition", handler, plugin_id="m")
    await p.start()

    await p.jobs.schedule_interval("m.transition", key="i", every=5 * TICK)
    await wait_until(lambda: len(handler.runs) == 1)  # the interval's first run
    await p.jobs.schedule_once("m.transition", key="k", run_at=now() + 2 * TICK)

    assert await p.jobs.cancel("k") is True
    assert await p.jobs.cancel("i") is True
    assert await p.jobs.cancel("k") is False
    assert await p.jobs.get("k") is None
    assert await p.jobs.list() == []
    await asyncio.sleep(6 * TICK.total_seconds())
    assert [r.key for r in handler.runs] == ["i"]


async def test_interval_job_runs_on_its_slots(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("h.check", handler, plugin_id="h")
    await p.start()

    start = now() + TICK
    job = await p.jobs.schedule_interval(
        "h.check", key="h:1", every=TICK, start_at=start, payload={"checkId": 1}
    )
    assert (job.kind, job.interval, job.next_run_at) == ("interval", TICK, start)
    await wait_until(lambda: len(handler.runs) >= 4)
    await p.jobs.cancel("h:1")

    slots = [r.scheduled_for for r in handler.runs[:4]]
    assert slots == [start + k * TICK for k in range(4)]
    assert all(r.attempt == 1 and r.payload == {"checkId": 1} for r in handler.runs)
    pairs = zip(handler.started, handler.runs, strict=True)
    assert all(started >= run.scheduled_for.timestamp() for started, run in pairs)


async def test_interval_with_past_start_keeps_its_phase(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("h.check", handler, plugin_id="h")
    anchor = now() - timedelta(seconds=100.013)

    job = await p.jobs.schedule_interval(
        "h.check", key="h:1", every=timedelta(seconds=10), start_at=anchor
    )
    assert now() - timedelta(seconds=10) < job.next_run_at <= now()
    assert (job.next_run_at - anchor) % timedelta(seconds=10) < timedelta(milliseconds=1)

    await p.start()
    await wait_until(lambda: len(handler.runs) == 1)
    await p.jobs.drain()
    assert [r.scheduled_for for r in handler.runs] == [job.next_run_at]
    nxt = (await p.jobs.get("h:1")).next_run_at  # type: ignore[union-attr]
    assert nxt == job.next_run_at + timedelta(seconds=10)


async def test_a_slot_is_skipped_while_the_previous_run_runs(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    p = engines.process()
    handler = Recorder(
        sleep=lambda run: 2.5 * TICK.total_seconds() if len(handler.runs) == 1 else 0
    )
    p.jobs.register("h.check", handler, plugin_id="h")
    await p.start()

    with caplog.at_level(logging.WARNING, logger="checkstack.jobs"):
        start = now()
        await p.jobs.schedule_interval("h.check", key="h:1", every=TICK, start_at=start)
        await wait_until(lambda: len(handler.ended) >= 3)
        await p.jobs.cancel("h:1")

    assert handler.peak == 1
    # Runs never overlap; the slots that fell due during the long first run were not run.
    assert handler.started[1] >= handler.ended[0]
    slots = [r.scheduled_for for r in handler.runs[:3]]
    assert slots[1] - slots[0] >= 3 * TICK
    assert slots[1].timestamp() >= handler.ended[0] - 0.05
    assert slots[2] - slots[1] == TICK
    assert "skipped" in caplog.text and "h:1" in caplog.text


async def test_an_overdue_interval_runs_once_not_once_per_missed_slot(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder()
    p.jobs.register("h.check", handler, plugin_id="h")
    start = now()
    await p.jobs.schedule_interval("h.check", key="h:1", every=TICK, start_at=start)
    await asyncio.sleep(5 * TICK.total_seconds())  # nothing runs it: about five slots go by

    resumed = time.time()
    await p.start()
    await wait_until(lambda: len(handler.runs) >= 2)
    await p.jobs.cancel("h:1")

    assert handler.runs[0].scheduled_for == start
    assert handler.runs[1].scheduled_for.timestamp() > resumed
    assert (handler.runs[1].scheduled_for - start) % TICK == timedelta(0)


async def test_a_key_never_runs_concurrently_with_itself(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder(sleep=lambda run: 3 * TICK.total_seconds() if run.payload["n"] == 1 else 0)
    p.jobs.register("m.transition", handler, plugin_id="m")
    await p.start()

    await p.jobs.schedule_once("m.transition", key="k", payload={"n": 1})
    await wait_until(lambda: len(handler.runs) == 1)
    await p.jobs.schedule_once("m.transition", key="k", payload={"n": 2})  # due now
    await wait_until(lambda: len(handler.ended) == 2)
    await p.jobs.drain()

    assert [r.payload["n"] for r in handler.runs] == [1, 2]
    assert handler.peak == 1
    assert handler.started[1] >= handler.ended[0]


async def test_failed_once_job_is_retried_with_attempt_numbers(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    p = engines.process()
    handler = Recorder(fail_times=2)
    p.jobs.register("m.flaky", handler, plugin_id="m", max_retries=3)
    await p.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.jobs"):
        await p.jobs.schedule_once("m.flaky", key="k", payload={"password": "s3cret"})
        await wait_until(lambda: len(handler.runs) == 3)
        await p.jobs.drain()

    assert [r.attempt for r in handler.runs] == [1, 2, 3]
    assert [r.payload for r in handler.runs] == [{"password": "s3cret"}] * 3
    failures = [r for r in caplog.records if r.name == "checkstack.jobs"]
    assert len(failures) == 2
    assert "job=m.flaky" in failures[0].getMessage() and "attempt=1/4" in failures[0].getMessage()
    assert "s3cret" not in caplog.text
    assert await p.jobs.get("k") is None


async def test_timeout_cancels_the_run_and_retries_then_gives_up(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    p = engines.process()
    cancelled = 0

    async def stuck(run: JobRun) -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    p.jobs.register("m.slow", stuck, plugin_id="m", timeout=0.1, max_retries=1)
    await p.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.jobs"):
        await p.jobs.schedule_once("m.slow", key="k")
        await wait_until(lambda: "gave up" in caplog.text)
        await p.jobs.drain()

    assert cancelled == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "checkstack.jobs"]
    assert "timed out" in messages[0] and "attempt=1/2" in messages[0]
    assert "attempt=2/2" in messages[1]
    assert await p.jobs.get("k") is None


async def test_failed_interval_runs_are_not_retried(engines: Engines) -> None:
    p = engines.process()
    handler = Recorder(fail_times=100)
    p.jobs.register("h.check", handler, plugin_id="h", max_retries=5)
    await p.start()

    await p.jobs.schedule_interval("h.check", key="h:1", every=TICK)
    await wait_until(lambda: len(handler.runs) >= 3)
    await p.jobs.cancel("h:1")

    assert [r.attempt for r in handler.runs[:3]] == [1, 1, 1]
    gaps = [b.scheduled_for - a.scheduled_for for a, b in itertools.pairwise(handler.runs[:3])]
    assert gaps == [TICK, TICK]


async def test_cron_get_list_and_validation(engines: Engines) -> None:
    p = engines.process()
    p.jobs.register("m.report", Recorder(), plugin_id="m")
    await p.start()

    before = now()
    job = await p.jobs.schedule_cron("m.report", key="c", cron="*/5 * * * *", payload={"a": 1})
    assert (job.kind, job.cron, job.interval, job.payload) == (
        "cron",
        "*/5 * * * *",
        None,
        {"a": 1},
    )
    nxt = job.next_run_at
    assert nxt.tzinfo is not None and nxt.utcoffset() == timedelta(0)
    assert nxt.minute % 5 == 0 and nxt.second == 0 and nxt.microsecond == 0
    assert before < nxt <= before + timedelta(minutes=5)
    for cron in ["not a cron", "* * * *", "*/5 * * * * *", "61 * * * *"]:
        with pytest.raises(ValueError, match="Invalid cron"):
            await p.jobs.schedule_cron("m.report", key="bad", cron=cron)

    later = now() + timedelta(hours=1)
    await p.jobs.schedule_once("m.report", key="h:2", run_at=later)
    await p.jobs.schedule_interval("m.report", key="h:1", every=timedelta(minutes=1))
    assert [j.key for j in await p.jobs.list()] == ["c", "h:1", "h:2"]
    assert [j.key for j in await p.jobs.list("h:")] == ["h:1", "h:2"]
    assert [j.key for j in await p.jobs.list("h%")] == []  # a prefix, not a pattern
    stored = await p.jobs.get("h:2")
    assert stored is not None and stored.next_run_at == later and stored.name == "m.report"
    assert await p.jobs.get("missing") is None
    assert await p.jobs.get("bad") is None

    with pytest.raises(ValueError, match="aware UTC"):
        await p.jobs.schedule_once("m.report", key="n", run_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        await p.jobs.schedule_interval("m.report", key="n", every=timedelta(0))
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await p.jobs.schedule_once("m.report", key="n", payload={"bad": object()})
    assert await p.jobs.get("n") is None


async def test_each_run_gets_its_own_copy_of_the_payload(engines: Engines) -> None:
    p = engines.process()
    seen: list[list[str]] = []

    async def vandal(run: JobRun) -> None:
        seen.append(list(run.payload["items"]))
        run.payload["items"].append("x")

    p.jobs.register("m.job", vandal, plugin_id="m")
    payload = {"items": ["a"]}
    await p.jobs.schedule_interval("m.job", key="k", every=TICK, payload=payload)
    payload["items"].append("late")
    await p.start()
    await wait_until(lambda: len(seen) >= 2)
    await p.jobs.cancel("k")

    assert seen[:2] == [["a"], ["a"]]


# -- events -----------------------------------------------------------------------------------


async def test_broadcast_reaches_every_subscription_of_every_process(engines: Engines) -> None:
    first, second = engines.process(), engines.process()
    a, b, c = Handler(), Handler(), Handler()
    first.events.subscribe(Subscription("catalog.system.deleted", a, plugin_id="incident"))
    first.events.subscribe(Subscription("catalog.system.deleted", b, plugin_id="incident"))
    second.events.subscribe(Subscription("catalog.system.deleted", c, plugin_id="incident"))
    other = Handler()
    second.events.subscribe(Subscription("catalog.system.created", other, plugin_id="incident"))
    await first.start()
    await second.start()

    emitted = [
        await first.events.emit("catalog.system.deleted", {"systemId": str(i)}) for i in range(3)
    ]
    big = await second.events.emit("catalog.system.deleted", {"blob": "x" * 20000})
    await wait_until(lambda: all(len(h.events) == 4 for h in (a, b, c)))
    await first.events.drain()

    for handler in (a, b, c):
        assert sorted(e.id for e in handler.events) == sorted([*(e.id for e in emitted), big.id])
        by_id = {e.id: e for e in handler.events}
        assert by_id[emitted[1].id].payload == {"systemId": "1"}
        assert by_id[emitted[1].id].emitted_at == emitted[1].emitted_at
        assert by_id[big.id].payload == {"blob": "x" * 20000}
    assert other.calls == 0


async def test_work_queue_delivers_once_per_group_across_processes(engines: Engines) -> None:
    first, second = engines.process(), engines.process()
    handlers: dict[str, list[Handler]] = {"cleanup": [], "audit": []}
    for process in (first, second):
        for group in handlers:
            handler = Handler()
            handlers[group].append(handler)
            process.events.subscribe(
                Subscription("auth.user.deleted", handler, plugin_id="teams", mode=WQ, group=group)
            )
    await first.start()
    await second.start()

    emitted = [await second.events.emit("auth.user.deleted", {"userId": str(i)}) for i in range(6)]
    expected = sorted(e.id for e in emitted)

    def got(group: str) -> list[str]:
        return sorted(e.id for h in handlers[group] for e in h.events)

    await wait_until(lambda: got("cleanup") == expected and got("audit") == expected)
    await first.events.drain()
    assert got("cleanup") == expected and got("audit") == expected


async def test_work_queue_retries_with_backoff_then_gives_up(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    p = engines.process()
    flaky, hopeless = Handler(fail_times=2), Handler(fail_times=100)
    p.events.subscribe(Subscription("auth.user.deleted", flaky, "teams", WQ, "a", max_retries=3))
    p.events.subscribe(Subscription("auth.user.deleted", hopeless, "teams", WQ, "b", max_retries=2))
    await p.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.events"):
        event = await p.events.emit("auth.user.deleted", {"userId": "u1", "token": "s3cret"})
        await wait_until(lambda: len(flaky.events) == 1 and hopeless.calls == 3)
        await p.events.drain()

    assert flaky.calls == 3 and flaky.events[0].id == event.id
    assert flaky.events[0].payload == {"userId": "u1", "token": "s3cret"}
    assert hopeless.calls == 3 and hopeless.events == []
    messages = [r.getMessage() for r in caplog.records if r.name == "checkstack.events"]
    assert sum("group=teams.b" in m for m in messages) == 3
    assert any("attempt=3/3" in m and "will retry" not in m for m in messages)
    assert "s3cret" not in caplog.text
    await asyncio.sleep(0.3)
    assert hopeless.calls == 3


async def test_events_emitted_before_start_are_delivered_after(engines: Engines) -> None:
    p = engines.process()
    broadcast, queued = Handler(), Handler()
    p.events.subscribe(Subscription("catalog.system.deleted", broadcast, plugin_id="incident"))
    p.events.subscribe(Subscription("catalog.system.deleted", queued, "incident", WQ, "g"))
    early = await p.events.emit("catalog.system.deleted", {"systemId": "early"})
    await asyncio.sleep(0.2)
    assert broadcast.calls == 0 and queued.calls == 0

    await p.start()
    await wait_until(lambda: broadcast.calls == 1 and queued.calls == 1)
    assert broadcast.events[0].id == early.id and queued.events[0].id == early.id


async def test_emit_validates_and_never_runs_handlers_inline(engines: Engines) -> None:
    p = engines.process()
    handler = Handler()
    p.events.subscribe(Subscription("catalog.system.deleted", handler, plugin_id="incident"))
    with pytest.raises(ValueError, match="group is required"):
        p.events.subscribe(Subscription("catalog.system.deleted", handler, "x", WQ))
    await p.start()
    with pytest.raises(RuntimeError, match="already started"):
        p.events.subscribe(Subscription("catalog.system.deleted", handler, plugin_id="late"))
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await p.events.emit("catalog.system.deleted", {"bad": object()})
    with pytest.raises(ValueError, match="Invalid event name"):
        await p.events.emit("nodots", {})

    event = await p.events.emit("catalog.system.deleted", {"systemId": "a"})
    assert handler.calls == 0
    assert len(event.id) == 32 and event.emitted_at.utcoffset() == timedelta(0)
    await wait_until(lambda: handler.calls == 1)
