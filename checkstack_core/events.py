"""Events: plugins emit named events with a JSON payload; other plugins subscribe to them.

Two delivery modes (SPEC §8):

* ``BROADCAST``: every process gets every event, and within a process every subscription is its own
  consumer, so two broadcast subscriptions of one plugin to one event both see every event.
* ``WORK_QUEUE``: each consumer group (``f"{plugin_id}.{group}"``) gets each event exactly once
  across all processes; a failed delivery is retried with exponential backoff.

Delivery is at-least-once, so handlers must be idempotent. ``emit`` only enqueues: handlers never
run inline and their errors never reach the emitter.

:class:`EventBus` is the interface plugins see. :class:`EmbeddedEventBus` implements it in process
with asyncio and is the default; a distributed engine over the same PostgreSQL (e.g. procrastinate
for work queues, LISTEN/NOTIFY for broadcast) can implement the same protocol and be selected by
configuration without any change to plugin code. Nothing in the protocol assumes memory: payloads
are JSON, subscriptions are declared before ``start()``, and handlers receive a fresh copy.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import msgspec

__all__ = [
    "DeliveryMode",
    "EmbeddedEventBus",
    "Event",
    "EventBus",
    "EventHandler",
    "Subscription",
]

logger = logging.getLogger("checkstack.events")

# "<pluginId>.<something>[.<more>]": plugin ids follow SPEC §3.1.
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9-]*(\.[A-Za-z0-9_-]+)+$")


@dataclass(frozen=True, slots=True)
class Event:
    """One emitted event, as a handler receives it."""

    name: str
    """Qualified name, ``"<pluginId>.<...>"``, e.g. ``"catalog.system.deleted"``."""
    payload: dict[str, Any]
    """JSON-compatible payload; each handler gets its own copy."""
    id: str
    """uuid4 hex, unique per emit (use it to make handlers idempotent)."""
    emitted_at: datetime
    """When ``emit`` was called (aware, UTC)."""


EventHandler = Callable[[Event], Awaitable[None]]
"""An async function handling one event."""


class DeliveryMode(StrEnum):
    """How an event reaches a subscription."""

    BROADCAST = "broadcast"
    """Every process, and every subscription in it, gets each event. Never retried."""
    WORK_QUEUE = "work_queue"
    """Exactly one consumer per group across all processes, with retries."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A plugin's handler for one event name."""

    event: str
    handler: EventHandler
    plugin_id: str
    mode: DeliveryMode = DeliveryMode.BROADCAST
    group: str | None = None
    """Consumer group, required for ``WORK_QUEUE``; qualified as ``f"{plugin_id}.{group}"``."""
    max_retries: int = 3
    """Retries after the first failed attempt (``WORK_QUEUE`` only; broadcast never retries)."""

    @property
    def qualified_group(self) -> str | None:
        """``f"{plugin_id}.{group}"`` for work-queue subscriptions, else ``None``."""
        return None if self.group is None else f"{self.plugin_id}.{self.group}"


@runtime_checkable
class EventBus(Protocol):
    """What plugins and the host use to emit and subscribe; implemented by each engine."""

    def subscribe(self, subscription: Subscription) -> None:
        """Declare a subscription. Only before :meth:`start` (``RuntimeError`` after)."""
        ...

    async def start(self) -> None:
        """Start delivering, including events emitted before the start."""
        ...

    async def emit(self, name: str, payload: Mapping[str, Any]) -> Event:
        """Enqueue an event and return at once; ``TypeError`` if the payload is not JSON."""
        ...

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every delivery, retries included, has finished (``TimeoutError`` after)."""
        ...

    async def stop(self) -> None:
        """Let in-flight deliveries finish for a short while, then stop the workers."""
        ...


def check_event_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` looks like ``<pluginId>.<name>``."""
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise ValueError(f"Invalid event name {name!r}: expected '<pluginId>.<name>'")


def check_subscription(
    subscription: Subscription, work_queue_keys: set[tuple[str, str, str]]
) -> DeliveryMode:
    """Validate a subscription (every engine's rules) against the work-queue keys
    ``(plugin_id, group, event)`` declared so far; returns its mode."""
    check_event_name(subscription.event)
    if not callable(subscription.handler):
        raise TypeError(f"Handler for {subscription.event!r} is not callable")
    mode = DeliveryMode(subscription.mode)
    if mode is DeliveryMode.BROADCAST:
        if subscription.group is not None:
            raise ValueError(
                f"group is only meaningful in work_queue mode (event {subscription.event!r} "
                f"in plugin {subscription.plugin_id!r})"
            )
        return mode
    if not subscription.group:
        raise ValueError(
            f"group is required when mode is 'work_queue' for event {subscription.event!r} "
            f"in plugin {subscription.plugin_id!r}"
        )
    if subscription.max_retries < 0:
        raise ValueError("max_retries must not be negative")
    key = (subscription.plugin_id, subscription.group, subscription.event)
    if key in work_queue_keys:
        raise ValueError(
            f"Duplicate group {subscription.group!r} in plugin {subscription.plugin_id!r} "
            f"for event {subscription.event!r}: each group must be unique within a plugin"
        )
    return mode


@dataclass(slots=True)
class _Published:
    event: Event
    raw: bytes  # the payload as JSON: each delivery decodes its own deep copy


@dataclass(slots=True)
class _Delivery:
    published: _Published
    subscription: Subscription
    attempt: int = 1


@dataclass(slots=True)
class _Group:
    """A work-queue consumer group for one event, shared by every bus of a hub."""

    members: list[tuple[EmbeddedEventBus, Subscription]] = field(default_factory=list)
    backlog: deque[_Published] = field(default_factory=deque)
    next_index: int = 0

    def dispatch(self, published: _Published) -> None:
        live = [m for m in self.members if m[0]._accepting]
        if not live:
            # Like a real queue: the message waits until a consumer of the group is running.
            self.backlog.append(published)
            return
        bus, subscription = live[self.next_index % len(live)]
        self.next_index += 1
        bus._enqueue(_Delivery(published, subscription))


class _Hub:
    """The in-memory broker shared by a bus and its peers (each standing for one process)."""

    def __init__(self) -> None:
        self.buses: list[EmbeddedEventBus] = []
        self.groups: dict[str, dict[str, _Group]] = {}  # event name -> qualified group -> group
        self.started = False
        self.pending: list[_Published] = []

    def publish(self, published: _Published) -> None:
        if not self.started:
            # Routed when the first bus starts, so subscriptions declared after an early emit count.
            self.pending.append(published)
            return
        self.route(published)

    def route(self, published: _Published) -> None:
        for bus in self.buses:
            bus._offer_broadcast(published)
        for group in self.groups.get(published.event.name, {}).values():
            group.dispatch(published)


class EmbeddedEventBus:
    """The in-process :class:`EventBus`: asyncio workers, memory queues, no persistence.

    Deliveries run on ``concurrency`` worker tasks. Work-queue retries wait
    ``retry_base_delay * 2 ** (attempt - 1)`` seconds (capped at ``retry_max_delay``) without
    holding a worker. :meth:`stop` waits up to ``shutdown_timeout`` seconds for in-flight work.

    Deliveries run concurrently, so their order is not guaranteed, even for one subscription.

    :meth:`peer` returns another bus on the same in-memory broker, standing for another process:
    broadcast events reach both, a work-queue group delivers each event to one of them (round
    robin). Tests use it to exercise multi-process semantics in one process. A work-queue group
    gets the events published once it is declared (or before the first bus started); while none
    of its buses runs, they wait for one.
    """

    def __init__(
        self,
        *,
        concurrency: int = 16,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        shutdown_timeout: float = 5.0,
        _hub: _Hub | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if retry_base_delay < 0 or retry_max_delay < 0:
            raise ValueError("retry delays must not be negative")
        self._concurrency = concurrency
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._shutdown_timeout = shutdown_timeout
        self._hub = _hub if _hub is not None else _Hub()
        self._hub.buses.append(self)
        self._broadcast: dict[str, list[Subscription]] = {}
        self._work_queue_keys: set[tuple[str, str, str]] = set()
        self._started = False
        self._stopped = False
        self._early: list[_Published] = []  # broadcast events that arrived before start()
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self._outstanding = 0  # queued + running + waiting for a retry
        self._idle = asyncio.Event()
        self._idle.set()

    def peer(self) -> EmbeddedEventBus:
        """A new bus on the same in-memory broker, standing for another process."""
        return EmbeddedEventBus(
            concurrency=self._concurrency,
            retry_base_delay=self._retry_base_delay,
            retry_max_delay=self._retry_max_delay,
            shutdown_timeout=self._shutdown_timeout,
            _hub=self._hub,
        )

    @property
    def _accepting(self) -> bool:
        return self._started and not self._stopped

    def subscribe(self, subscription: Subscription) -> None:
        """Declare a subscription; see :class:`Subscription` for the rules."""
        if self._started:
            raise RuntimeError(
                f"Cannot subscribe plugin {subscription.plugin_id!r} to {subscription.event!r}: "
                "the event bus has already started"
            )
        mode = check_subscription(subscription, self._work_queue_keys)
        if mode is DeliveryMode.BROADCAST:
            self._broadcast.setdefault(subscription.event, []).append(subscription)
            return
        assert subscription.group is not None
        key = (subscription.plugin_id, subscription.group, subscription.event)
        self._work_queue_keys.add(key)
        qualified = f"{subscription.plugin_id}.{subscription.group}"
        group = self._hub.groups.setdefault(subscription.event, {}).setdefault(qualified, _Group())
        group.members.append((self, subscription))

    async def start(self) -> None:
        """Start the workers and deliver what was emitted before."""
        if self._started:
            raise RuntimeError("The event bus has already started")
        self._started = True
        self._workers = [
            asyncio.create_task(self._worker(), name=f"checkstack-events-{i}")
            for i in range(self._concurrency)
        ]
        early, self._early = self._early, []
        for published in early:
            self._offer_broadcast(published)
        hub = self._hub
        if not hub.started:
            hub.started = True
            pending, hub.pending = hub.pending, []
            for published in pending:
                hub.route(published)
        for groups in hub.groups.values():
            for group in groups.values():
                if group.backlog and any(bus is self for bus, _ in group.members):
                    backlog, group.backlog = group.backlog, deque()
                    for published in backlog:
                        group.dispatch(published)

    async def emit(self, name: str, payload: Mapping[str, Any]) -> Event:
        """Validate and enqueue an event; returns it (with its normalized JSON payload)."""
        if self._stopped:
            raise RuntimeError(f"Cannot emit {name!r}: the event bus is stopped")
        check_event_name(name)
        if not isinstance(payload, Mapping):
            raise TypeError(f"Payload of event {name!r} must be a mapping")
        try:
            raw = msgspec.json.encode(payload)
        except (TypeError, msgspec.EncodeError, ValueError, OverflowError) as exc:
            raise TypeError(f"Payload of event {name!r} is not JSON-serializable: {exc}") from None
        event = Event(
            name=name,
            payload=msgspec.json.decode(raw),
            id=uuid.uuid4().hex,
            emitted_at=datetime.now(UTC),
        )
        self._hub.publish(_Published(event, raw))
        return event

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every started bus of the hub has no queued, running or retrying delivery."""
        async with asyncio.timeout(timeout):
            while True:
                busy = next((b for b in self._hub.buses if b._outstanding), None)
                if busy is None:
                    return
                await busy._idle.wait()

    async def stop(self) -> None:
        """Wait up to ``shutdown_timeout`` for in-flight deliveries, then cancel the workers."""
        if self._stopped:
            return
        if self._started and self._outstanding:
            try:
                async with asyncio.timeout(self._shutdown_timeout):
                    while self._outstanding:
                        await self._idle.wait()
            except TimeoutError:
                logger.warning(
                    "event bus stopping with %d deliveries unfinished", self._outstanding
                )
        self._stopped = True
        for timer in self._retry_timers:
            timer.cancel()
        self._retry_timers.clear()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._outstanding = 0
        self._idle.set()

    # -- internals --------------------------------------------------------------------------

    def _offer_broadcast(self, published: _Published) -> None:
        if self._stopped:
            return
        if not self._started:
            self._early.append(published)
            return
        for subscription in self._broadcast.get(published.event.name, ()):
            self._enqueue(_Delivery(published, subscription))

    def _enqueue(self, delivery: _Delivery) -> None:
        self._track(+1)
        self._queue.put_nowait(delivery)

    def _track(self, delta: int) -> None:
        self._outstanding += delta
        if self._outstanding:
            self._idle.clear()
        else:
            self._idle.set()

    async def _worker(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            finally:
                self._track(-1)

    async def _deliver(self, delivery: _Delivery) -> None:
        published, subscription = delivery.published, delivery.subscription
        source = published.event
        event = Event(
            name=source.name,
            payload=msgspec.json.decode(published.raw),
            id=source.id,
            emitted_at=source.emitted_at,
        )
        try:
            await subscription.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            queued = subscription.mode == DeliveryMode.WORK_QUEUE
            attempts = subscription.max_retries + 1 if queued else 1
            retry = delivery.attempt < attempts
            # Never log the payload: it may hold secrets.
            logger.exception(
                "event handler failed: event=%s id=%s plugin=%s group=%s attempt=%d/%d%s",
                source.name,
                source.id,
                subscription.plugin_id,
                subscription.qualified_group,
                delivery.attempt,
                attempts,
                ", will retry" if retry else "",
            )
            if retry:
                self._schedule_retry(delivery)

    def _schedule_retry(self, delivery: _Delivery) -> None:
        delay = min(self._retry_base_delay * 2 ** (delivery.attempt - 1), self._retry_max_delay)
        retry = _Delivery(delivery.published, delivery.subscription, delivery.attempt + 1)
        self._track(+1)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._retry_timers.discard(timer)
            self._queue.put_nowait(retry)

        timer = loop.call_later(delay, fire)
        self._retry_timers.add(timer)
