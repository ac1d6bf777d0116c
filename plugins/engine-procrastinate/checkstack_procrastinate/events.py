"""The core's :class:`~checkstack_core.events.EventBus` on PostgreSQL.

- **Work queue**: ``emit`` stores the payload once (``procrastinate_checkstack_events``) and
  defers one procrastinate job per consumer group subscribed to the event, in one transaction.
  Any ``checkstack worker`` runs it, once per group in the whole deployment; a failed delivery is
  retried after ``retry_base_delay * 2 ** (attempt - 1)`` seconds, ``max_retries`` times.
- **Broadcast**: ``emit`` sends ``NOTIFY checkstack_broadcast_v1`` (the payload inline, or a
  reference to the stored payload when it would not fit a notification); every process, serving
  or working, ``LISTEN``\\ s and delivers to its own broadcast subscriptions. As with the embedded
  engine a broadcast is never retried, and a process that is not listening (stopped, restarting,
  reconnecting) misses it.

Every process must run the same plugins: emitting needs to know the consumer groups.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from procrastinate.jobs import Job

from checkstack_core.events import (
    DeliveryMode,
    Event,
    Subscription,
    check_event_name,
    check_subscription,
)

from .runtime import (
    BROADCAST_CHANNEL,
    EVENT_TASK,
    EVENTS_QUEUE,
    RetryLater,
    Runtime,
    due_priority,
)

logger = logging.getLogger("checkstack.events")

TABLE = "procrastinate_checkstack_events"
#: PostgreSQL refuses notifications of 8000 bytes or more; larger payloads go by reference.
NOTIFY_LIMIT = 7000
#: Stored payloads of broadcasts are read at once by the listeners; kept this long.
BROADCAST_KEEP = timedelta(minutes=10)
#: How long ``drain`` waits for one of this process's broadcasts to come back.
AWAIT_AT_MOST = 5.0


class _Envelope(msgspec.Struct, omit_defaults=True):
    id: str
    name: str
    at: str
    payload: msgspec.Raw = msgspec.Raw()
    stored: bool = False  # the payload did not fit: read it from the events table


class ProcrastinateEventBus:
    """See the module docstring. Built by the engine plugin per host (``events_engine``)."""

    def __init__(self, runtime: Runtime, *, concurrency: int = 16, shutdown_timeout: float = 5.0):
        self._rt = runtime
        runtime.events = self
        runtime.listen(BROADCAST_CHANNEL, self._on_broadcast)
        self._concurrency = concurrency
        self._shutdown_timeout = shutdown_timeout
        self._broadcast: dict[str, list[Subscription]] = {}
        self._groups: dict[str, list[Subscription]] = {}  # event -> work-queue subscriptions
        self._by_group: dict[tuple[str, str], Subscription] = {}  # (event, qualified group)
        self._work_queue_keys: set[tuple[str, str, str]] = set()
        self._started = False
        self._stopped = False
        self._early: list[tuple[Event, bytes]] = []  # broadcasts emitted before start()
        self._queue: asyncio.Queue[tuple[Subscription, Event, bytes]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        # Own broadcasts not yet back from the database (id -> when sent), for drain().
        self._awaited: dict[str, float] = {}
        self._fetches: set[asyncio.Task[None]] = set()
        self._delivering = 0  # broadcast deliveries queued or running here

    def subscribe(self, subscription: Subscription) -> None:
        if self._started:
            raise RuntimeError(
                f"Cannot subscribe plugin {subscription.plugin_id!r} to {subscription.event!r}: "
                "the event bus has already started"
            )
        mode = check_subscription(subscription, self._work_queue_keys)
        if mode is DeliveryMode.BROADCAST:
            self._broadcast.setdefault(subscription.event, []).append(subscription)
            return
        assert subscription.group is not None and subscription.qualified_group is not None
        self._work_queue_keys.add((subscription.plugin_id, subscription.group, subscription.event))
        self._groups.setdefault(subscription.event, []).append(subscription)
        self._by_group[(subscription.event, subscription.qualified_group)] = subscription

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("The event bus has already started")
        self._started = True
        self._workers = [
            asyncio.create_task(self._deliver_loop(), name=f"checkstack-broadcast-{i}")
            for i in range(self._concurrency)
        ]
        await self._rt.start()  # LISTENing from here on: our own early broadcasts come back
        early, self._early = self._early, []
        for event, raw in early:
            await self._notify(event, raw)

    async def run_worker(self, *, concurrency: int, stop: Any) -> None:
        """Run work-queue deliveries (and jobs) in this process until ``stop`` is set."""
        await self._rt.run_worker(concurrency=concurrency, stop=stop)

    async def emit(self, name: str, payload: Mapping[str, Any]) -> Event:
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
        groups = self._groups.get(name, ())
        if groups:
            await self._enqueue(event, raw, groups)
        if name in self._broadcast:
            if self._started:
                await self._notify(event, raw)
            else:
                self._early.append((event, raw))
        return event

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until this process's broadcasts are delivered here and no work-queue delivery
        runs, is due or awaits a retry in any worker."""

        async def local_idle() -> bool:
            # A notification lost while the LISTEN connection was down never comes back.
            lost = time.monotonic() - AWAIT_AT_MOST
            for event_id in [i for i, sent in self._awaited.items() if sent < lost]:
                del self._awaited[event_id]
            return not (self._awaited or self._fetches or self._delivering)

        await self._rt.wait_idle(EVENTS_QUEUE, timeout, local_idle)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            async with asyncio.timeout(self._shutdown_timeout):
                await self._queue.join()
        except TimeoutError:
            logger.warning("event bus stopping with broadcast deliveries unfinished")
        for task in [*self._workers, *self._fetches]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._fetches, return_exceptions=True)
        if self._started:
            await self._rt.stop()

    # -- work queue -----------------------------------------------------------------------

    async def _enqueue(self, event: Event, raw: bytes, groups: Any) -> None:
        jobs = [
            Job(
                queue=EVENTS_QUEUE,
                task_name=EVENT_TASK,
                lock=None,
                queueing_lock=None,
                task_kwargs={"event": event.name, "id": event.id, "group": sub.qualified_group},
                priority=due_priority(event.emitted_at),
            )
            for sub in groups
        ]
        async with self._rt.transaction() as cursor:
            await cursor.execute(
                f"INSERT INTO {TABLE} (id, name, payload, emitted_at) "
                "VALUES (%s, %s, %s::jsonb, %s)",
                (event.id, event.name, raw.decode(), event.emitted_at),
            )
            await self._rt.defer(cursor, jobs)

    async def run(self, job: Job) -> None:
        """Deliver one work-queue event to its group's subscription (in a worker)."""
        args = job.task_kwargs
        name, event_id, group = str(args["event"]), str(args["id"]), str(args["group"])
        subscription = self._by_group.get((name, group))
        if subscription is None:
            logger.error(
                "event %s id=%s: group %s is not subscribed in this worker", name, event_id, group
            )
            return
        event = await self._load(event_id)
        if event is None:
            logger.error("event %s id=%s: its payload is gone", name, event_id)
            return
        attempt, attempts = job.attempts + 1, subscription.max_retries + 1
        try:
            await subscription.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            retry = attempt < attempts
            # Never log the payload: it may hold secrets.
            logger.exception(
                "event handler failed: event=%s id=%s plugin=%s group=%s attempt=%d/%d%s",
                name,
                event_id,
                subscription.plugin_id,
                group,
                attempt,
                attempts,
                ", will retry" if retry else "",
            )
            if retry:
                settings = self._rt.settings
                delay = min(
                    settings.retry_base_delay * 2 ** (attempt - 1), settings.retry_max_delay
                )
                retry_at = datetime.now(UTC) + timedelta(seconds=delay)
                self._rt.wake_at(retry_at.timestamp())
                raise RetryLater(retry_at) from None

    async def _load(self, event_id: str) -> Event | None:
        async with self._rt.transaction() as cursor:
            await cursor.execute(
                f"SELECT name, payload, emitted_at FROM {TABLE} WHERE id = %s", (event_id,)
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return Event(row["name"], row["payload"], event_id, row["emitted_at"].astimezone(UTC))

    async def housekeeping(self) -> None:
        """Delete payloads that no pending delivery needs (and old broadcast payloads)."""
        async with self._rt.transaction() as cursor:
            await cursor.execute(
                f"""
                DELETE FROM {TABLE} e
                 WHERE e.emitted_at < now() - make_interval(secs => %s)
                   AND NOT EXISTS (
                       SELECT 1 FROM procrastinate_jobs j
                        WHERE j.queue_name = %s AND j.status IN ('todo', 'doing')
                          AND j.args ->> 'id' = e.id)
                """,
                (BROADCAST_KEEP.total_seconds(), EVENTS_QUEUE),
            )

    # -- broadcast ------------------------------------------------------------------------

    async def _notify(self, event: Event, raw: bytes) -> None:
        at = event.emitted_at.isoformat()
        body = msgspec.json.encode(_Envelope(event.id, event.name, at, msgspec.Raw(raw)))
        self._awaited[event.id] = time.monotonic()
        try:
            async with self._rt.transaction() as cursor:
                if len(body) > NOTIFY_LIMIT:
                    await cursor.execute(
                        f"INSERT INTO {TABLE} (id, name, payload, emitted_at) "
                        "VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (id) DO NOTHING",
                        (event.id, event.name, raw.decode(), event.emitted_at),
                    )
                    body = msgspec.json.encode(_Envelope(event.id, event.name, at, stored=True))
                await cursor.execute("SELECT pg_notify(%s, %s)", (BROADCAST_CHANNEL, body.decode()))
        except BaseException:
            self._awaited.pop(event.id, None)
            raise

    def _on_broadcast(self, payload: str) -> None:
        try:
            envelope = msgspec.json.decode(payload, type=_Envelope)
        except msgspec.DecodeError:
            logger.warning("Ignoring a malformed broadcast notification")
            return
        self._awaited.pop(envelope.id, None)
        if self._stopped or envelope.name not in self._broadcast:
            return
        if envelope.stored:
            task = asyncio.create_task(self._fetch_and_offer(envelope.id))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)
            return
        raw = bytes(envelope.payload)
        event = Event(
            envelope.name,
            msgspec.json.decode(raw),
            envelope.id,
            datetime.fromisoformat(envelope.at),
        )
        self._offer(event, raw)

    async def _fetch_and_offer(self, event_id: str) -> None:
        event = await self._load(event_id)
        if event is None:
            logger.error("broadcast id=%s: its payload is gone", event_id)
            return
        self._offer(event, msgspec.json.encode(event.payload))

    def _offer(self, event: Event, raw: bytes) -> None:
        for subscription in self._broadcast.get(event.name, ()):
            self._delivering += 1
            self._queue.put_nowait((subscription, event, raw))

    async def _deliver_loop(self) -> None:
        while True:
            subscription, source, raw = await self._queue.get()
            try:
                event = Event(source.name, msgspec.json.decode(raw), source.id, source.emitted_at)
                await subscription.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "event handler failed: event=%s id=%s plugin=%s group=%s attempt=1/1",
                    source.name,
                    source.id,
                    subscription.plugin_id,
                    None,
                )
            finally:
                self._delivering -= 1
                self._queue.task_done()

    async def status(self) -> dict[str, Any]:
        """For ``/readyz``: how many workers heartbeat (0: no work-queue delivery anywhere)."""
        return {"workers": await self._rt.workers_alive()}
