"""The embedded event bus: delivery modes, retries, isolation and lifecycle (SPEC §8)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from checkstack_core.events import (
    DeliveryMode,
    EmbeddedEventBus,
    Event,
    EventBus,
    Subscription,
)

WQ = DeliveryMode.WORK_QUEUE


@pytest.fixture
async def bus() -> AsyncIterator[EmbeddedEventBus]:
    bus = EmbeddedEventBus(retry_base_delay=0.01, shutdown_timeout=0.2)
    yield bus
    await bus.stop()


class Recorder:
    """A handler that records the events it got and can fail a number of times first."""

    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Event] = []
        self.calls = 0
        self.fail_times = fail_times

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise RuntimeError(f"boom {self.calls}")
        self.events.append(event)


def test_embedded_bus_implements_the_protocol() -> None:
    assert isinstance(EmbeddedEventBus(), EventBus)


async def test_broadcast_reaches_every_subscription_of_one_plugin(bus: EmbeddedEventBus) -> None:
    first, second = Recorder(), Recorder()
    bus.subscribe(Subscription("catalog.system.deleted", first, plugin_id="incident"))
    bus.subscribe(Subscription("catalog.system.deleted", second, plugin_id="incident"))
    await bus.start()

    for i in range(5):
        await bus.emit("catalog.system.deleted", {"systemId": str(i)})
    await bus.drain()

    assert [e.payload["systemId"] for e in first.events] == ["0", "1", "2", "3", "4"]
    assert [e.payload["systemId"] for e in second.events] == ["0", "1", "2", "3", "4"]


async def test_only_subscribers_of_the_exact_name_get_an_event(bus: EmbeddedEventBus) -> None:
    deleted, created = Recorder(), Recorder()
    bus.subscribe(Subscription("catalog.system.deleted", deleted, plugin_id="incident"))
    bus.subscribe(Subscription("catalog.system.created", created, plugin_id="incident"))
    await bus.start()

    await bus.emit("catalog.system.deleted", {})
    await bus.drain()

    assert deleted.calls == 1
    assert created.calls == 0


async def test_emit_returns_the_event_and_never_runs_handlers_inline(
    bus: EmbeddedEventBus,
) -> None:
    handler = Recorder()
    bus.subscribe(Subscription("catalog.system.deleted", handler, plugin_id="incident"))
    await bus.start()

    before = datetime.now(UTC)
    one = await bus.emit("catalog.system.deleted", {"systemId": "a"})
    two = await bus.emit("catalog.system.deleted", {"systemId": "b"})
    assert handler.calls == 0

    assert one.name == "catalog.system.deleted"
    assert one.payload == {"systemId": "a"}
    assert len(one.id) == 32 and int(one.id, 16) >= 0
    assert one.id != two.id
    assert one.emitted_at.tzinfo is not None and one.emitted_at.utcoffset() == timedelta(0)
    assert before <= one.emitted_at <= datetime.now(UTC)

    await bus.drain()
    assert [e.id for e in handler.events] == [one.id, two.id]
    assert handler.events[0].emitted_at == one.emitted_at


async def test_handler_errors_are_logged_without_payload_and_do_not_reach_the_emitter(
    bus: EmbeddedEventBus, caplog: pytest.LogCaptureFixture
) -> None:
    failing, healthy = Recorder(fail_times=10), Recorder()
    bus.subscribe(Subscription("auth.user.deleted", failing, plugin_id="teams"))
    bus.subscribe(Subscription("auth.user.deleted", healthy, plugin_id="teams"))
    await bus.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.events"):
        event = await bus.emit("auth.user.deleted", {"userId": "u1", "token": "s3cret-value"})
        await bus.drain()

    assert healthy.calls == 1
    assert failing.calls == 1, "broadcast deliveries are never retried"
    records = [r for r in caplog.records if r.name == "checkstack.events"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "auth.user.deleted" in message
    assert event.id in message
    assert "plugin=teams" in message
    assert "attempt=1" in message
    assert records[0].exc_info is not None
    assert "s3cret-value" not in caplog.text


async def test_work_queue_retries_until_success(bus: EmbeddedEventBus) -> None:
    handler = Recorder(fail_times=2)
    bus.subscribe(Subscription("catalog.system.deleted", handler, "incident", WQ, group="cleanup"))
    await bus.start()

    event = await bus.emit("catalog.system.deleted", {"systemId": "s1"})
    await bus.drain()

    assert handler.calls == 3
    assert [e.id for e in handler.events] == [event.id]


async def test_work_queue_gives_up_after_max_retries(
    bus: EmbeddedEventBus, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder(fail_times=100)
    bus.subscribe(
        Subscription(
            "catalog.system.deleted", handler, "incident", WQ, group="cleanup", max_retries=2
        )
    )
    await bus.start()

    with caplog.at_level(logging.ERROR, logger="checkstack.events"):
        await bus.emit("catalog.system.deleted", {})
        await bus.drain()

    assert handler.calls == 3  # the first attempt and two retries
    attempts = [r.getMessage() for r in caplog.records if r.name == "checkstack.events"]
    assert ["attempt=1/3" in attempts[0], "attempt=2/3" in attempts[1]] == [True, True]
    assert "attempt=3/3" in attempts[2] and "will retry" not in attempts[2]


async def test_retries_back_off_exponentially() -> None:
    bus = EmbeddedEventBus(retry_base_delay=0.02)
    seen: list[float] = []
    loop = asyncio.get_running_loop()

    async def handler(event: Event) -> None:
        seen.append(loop.time())
        raise RuntimeError("down")

    bus.subscribe(Subscription("a.b", handler, "p", WQ, group="g", max_retries=3))
    await bus.start()
    await bus.emit("a.b", {})
    await bus.drain()
    await bus.stop()

    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert len(seen) == 4
    # Lower bounds only: timers never fire early, but may fire late.
    assert gaps[0] >= 0.02 * 0.9
    assert gaps[1] >= 0.04 * 0.9
    assert gaps[2] >= 0.08 * 0.9


async def test_work_queue_delivers_once_per_group(bus: EmbeddedEventBus) -> None:
    incident, maintenance, audit = Recorder(), Recorder(), Recorder()
    bus.subscribe(Subscription("catalog.system.deleted", incident, "incident", WQ, group="gc"))
    bus.subscribe(
        Subscription("catalog.system.deleted", maintenance, "maintenance", WQ, group="gc")
    )
    bus.subscribe(Subscription("catalog.system.deleted", audit, "incident", WQ, group="audit"))
    await bus.start()

    for _ in range(3):
        await bus.emit("catalog.system.deleted", {})
    await bus.drain()

    # Groups are qualified by plugin id, so "gc" of two plugins are two groups.
    assert (incident.calls, maintenance.calls, audit.calls) == (3, 3, 3)


async def test_work_queue_round_robins_across_processes_broadcast_reaches_all() -> None:
    one = EmbeddedEventBus()
    two = one.peer()
    worker = {one: Recorder(), two: Recorder()}
    listener = {one: Recorder(), two: Recorder()}
    for process in (one, two):
        process.subscribe(Subscription("a.job", worker[process], "p", WQ, group="workers"))
        process.subscribe(Subscription("a.job", listener[process], "p"))
        await process.start()

    emitted = {(await one.emit("a.job", {"n": n})).id for n in range(6)}
    await one.drain()

    assert worker[one].calls == 3 and worker[two].calls == 3
    assert {e.id for e in worker[one].events} | {e.id for e in worker[two].events} == emitted
    assert listener[one].calls == 6 and listener[two].calls == 6
    await one.stop()
    await two.stop()


async def test_work_queue_group_waits_for_a_running_consumer() -> None:
    one = EmbeddedEventBus()
    two = one.peer()
    late = Recorder()
    one.subscribe(Subscription("a.job", Recorder(), "other"))
    two.subscribe(Subscription("a.job", late, "p", WQ, group="workers"))
    await one.start()

    await one.emit("a.job", {"n": 1})
    await one.drain()
    assert late.calls == 0  # its only consumer's process has not started yet

    await two.start()
    await two.drain()
    assert [e.payload for e in late.events] == [{"n": 1}]
    await one.stop()
    await two.stop()


async def test_subscription_rules(bus: EmbeddedEventBus) -> None:
    handler = Recorder()
    with pytest.raises(ValueError, match=r"group is required.*'a\.b'.*'p'"):
        bus.subscribe(Subscription("a.b", handler, "p", WQ))
    with pytest.raises(ValueError, match="work_queue"):
        bus.subscribe(Subscription("a.b", handler, "p", group="g"))
    with pytest.raises(ValueError, match="event name"):
        bus.subscribe(Subscription("nodot", handler, "p"))

    bus.subscribe(Subscription("a.b", handler, "p", WQ, group="g"))
    bus.subscribe(Subscription("a.c", handler, "p", WQ, group="g"))  # other event: fine
    bus.subscribe(Subscription("a.b", handler, "q", WQ, group="g"))  # other plugin: fine
    with pytest.raises(ValueError, match=r"Duplicate group 'g' in plugin 'p' for event 'a\.b'"):
        bus.subscribe(Subscription("a.b", handler, "p", WQ, group="g"))

    await bus.start()
    with pytest.raises(RuntimeError, match="already started"):
        bus.subscribe(Subscription("a.d", handler, "p"))


async def test_payload_must_be_json(bus: EmbeddedEventBus) -> None:
    handler = Recorder()
    bus.subscribe(Subscription("a.b", handler, "p"))
    await bus.start()

    with pytest.raises(TypeError, match="not JSON-serializable"):
        await bus.emit("a.b", {"when": object()})
    with pytest.raises(TypeError, match="mapping"):
        await bus.emit("a.b", ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event name"):
        await bus.emit("A.b", {})
    await bus.drain()
    assert handler.calls == 0


async def test_each_handler_gets_its_own_copy_of_the_payload(bus: EmbeddedEventBus) -> None:
    seen: list[dict[str, object]] = []

    async def vandal(event: Event) -> None:
        event.payload["systemIds"].append("x")
        event.payload["extra"] = True

    async def reader(event: Event) -> None:
        seen.append(event.payload)

    bus.subscribe(Subscription("a.b", vandal, "p"))
    bus.subscribe(Subscription("a.b", reader, "q"))
    bus.subscribe(Subscription("a.b", vandal, "r", WQ, group="g"))
    await bus.start()

    system_ids = ["s1"]
    event = await bus.emit("a.b", {"systemIds": system_ids, "nested": {"k": 1}})
    system_ids.append("late")  # the emitter's later changes do not leak either
    await bus.drain()

    assert seen == [{"systemIds": ["s1"], "nested": {"k": 1}}]
    assert event.payload == {"systemIds": ["s1"], "nested": {"k": 1}}


async def test_events_emitted_before_start_are_delivered_after(bus: EmbeddedEventBus) -> None:
    early, declared_after_emit, worker = Recorder(), Recorder(), Recorder()
    bus.subscribe(Subscription("a.b", early, "p"))
    event = await bus.emit("a.b", {"n": 1})
    bus.subscribe(Subscription("a.b", declared_after_emit, "q"))
    bus.subscribe(Subscription("a.b", worker, "r", WQ, group="g"))
    await asyncio.sleep(0.01)
    assert early.calls == 0

    await bus.start()
    await bus.drain()

    for handler in (early, declared_after_emit, worker):
        assert [e.id for e in handler.events] == [event.id]


async def test_deliveries_run_concurrently_but_bounded() -> None:
    bus = EmbeddedEventBus(concurrency=3)
    active = peak = done = 0

    async def slow(event: Event) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        done += 1

    bus.subscribe(Subscription("a.b", slow, "p"))
    await bus.start()
    for _ in range(9):
        await bus.emit("a.b", {})
    await bus.drain()
    await bus.stop()

    assert done == 9
    assert peak == 3


async def test_stop_cancels_stuck_handlers_and_refuses_new_events() -> None:
    bus = EmbeddedEventBus(shutdown_timeout=0.05)
    cancelled = asyncio.Event()

    async def stuck(event: Event) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bus.subscribe(Subscription("a.b", stuck, "p"))
    await bus.start()
    await bus.emit("a.b", {})
    await asyncio.sleep(0.01)

    await bus.stop()

    assert cancelled.is_set()
    with pytest.raises(RuntimeError, match="stopped"):
        await bus.emit("a.b", {})


async def test_drain_times_out_on_a_stuck_handler(bus: EmbeddedEventBus) -> None:
    async def stuck(event: Event) -> None:
        await asyncio.sleep(10)

    bus.subscribe(Subscription("a.b", stuck, "p"))
    await bus.start()
    await bus.emit("a.b", {})
    with pytest.raises(TimeoutError):
        await bus.drain(timeout=0.05)


async def test_handlers_may_emit(bus: EmbeddedEventBus) -> None:
    names: Counter[str] = Counter()

    async def relay(event: Event) -> None:
        names[event.name] += 1
        if event.name == "a.first":
            await bus.emit("a.second", {})

    async def count(event: Event) -> None:
        names[event.name] += 1

    bus.subscribe(Subscription("a.first", relay, "p"))
    bus.subscribe(Subscription("a.second", count, "p", WQ, group="g"))
    await bus.start()
    await bus.emit("a.first", {})
    await bus.drain()

    assert names == Counter({"a.first": 1, "a.second": 1})
