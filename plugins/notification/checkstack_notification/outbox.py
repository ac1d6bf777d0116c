"""Delivering the outbox: one job run per attempt, retries with exponential backoff, a rate
limit per channel or integration, and a sweep that picks up what a restart forgot.

An attempt claims its row (a conditional ``UPDATE`` on the attempts seen, with a lease), commits,
sends with no database connection held, then records the outcome in a second transaction and
schedules the next attempt. A process killed mid-attempt leaves the lease to expire; one killed
before the job ran leaves the row pending: the sweep (at startup, then every ``sweep_seconds``)
schedules every due pending row again. Delivery is therefore at least once: receivers
de-duplicate on ``X-Checkstack-Delivery``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlmodel import col, select

from checkstack_core import Context, vault
from checkstack_core.db import utcnow

from .models import ChannelRow, DeliveryRow, IntegrationRow
from .senders import Outgoing, SendError, send_apprise, send_webhook
from .service import AppriseConfig, Settings, WebhookConfig, runtime, unseal

DELIVER_JOB = "notification.deliver"
SWEEP_JOB = "notification.sweep"
SWEEP_KEY = "notification:sweep"
#: Most pending deliveries one sweep schedules (the next sweep takes the rest).
SWEEP_BATCH = 500
RATE_WINDOW = timedelta(minutes=1)


def job_key(delivery_id: str, attempts: int) -> str:
    """One key per attempt: scheduling it twice (the queue and a sweep) runs it once."""
    return f"notification:deliver:{delivery_id}:{attempts}"


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base... capped."""
    seconds = settings.retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


async def schedule(ctx: Context, delivery_id: str, attempts: int, at: datetime | None) -> None:
    await ctx.jobs.schedule_once(
        DELIVER_JOB, key=job_key(delivery_id, attempts), run_at=at, payload={"id": delivery_id}
    )


async def schedule_new(ctx: Context, ids: list[str]) -> None:
    """Schedule the first attempt of freshly committed deliveries."""
    for delivery_id in ids:
        await schedule(ctx, delivery_id, 0, None)


async def sweep(ctx: Context) -> int:
    """Schedule every pending delivery that is due (or soon) and not in flight; how many."""
    now = utcnow()
    horizon = now + timedelta(seconds=runtime(ctx).settings.sweep_seconds)
    rows = (
        await ctx.session.exec(
            select(col(DeliveryRow.id), col(DeliveryRow.attempts), col(DeliveryRow.next_attempt_at))
            .where(
                col(DeliveryRow.status) == "pending",
                sa.or_(
                    col(DeliveryRow.next_attempt_at).is_(None),
                    col(DeliveryRow.next_attempt_at) <= horizon,
                ),
                sa.or_(
                    col(DeliveryRow.locked_until).is_(None), col(DeliveryRow.locked_until) < now
                ),
            )
            .order_by(col(DeliveryRow.next_attempt_at))
            .limit(SWEEP_BATCH)
        )
    ).all()
    # Read everything first, then schedule: the job scheduler is not part of the transaction.
    await ctx.session.commit()
    for delivery_id, attempts, at in rows:
        await schedule(ctx, delivery_id, attempts, at if at is not None and at > now else None)
    return len(rows)


async def _rate_limited(ctx: Context, row: DeliveryRow, limit: int, now: datetime) -> datetime:
    """When the target may take another message (``now``: at once), at most ``limit`` a minute."""
    connection = await ctx.session.connection()
    since = now - RATE_WINDOW
    recent = (
        await connection.execute(
            sa.select(col(DeliveryRow.last_attempt_at))
            .where(
                col(DeliveryRow.target) == row.target,
                col(DeliveryRow.target_id) == row.target_id,
                col(DeliveryRow.last_attempt_at) > since,
            )
            .order_by(col(DeliveryRow.last_attempt_at).desc())
            .limit(limit)
        )
    ).scalars()
    times = [t for t in recent if t is not None]
    if len(times) < limit:
        return now
    return min(times) + RATE_WINDOW


async def _outgoing(
    ctx: Context, row: DeliveryRow
) -> tuple[Outgoing, ChannelRow | IntegrationRow | None, int]:
    message = msgspec.json.decode(row.message)
    outgoing = Outgoing(
        delivery_id=row.id,
        event=row.event,
        title=str(message.get("title") or row.event),
        body=str(message.get("body") or ""),
        importance=str(message.get("importance") or "info"),
        json_body=row.message.encode(),
    )
    # The target's row is locked until this attempt is claimed: two deliveries to one target
    # then read its recent attempts one after the other, so the rate limit holds under
    # concurrency (PostgreSQL; SQLite's write transactions are serial already).
    target: ChannelRow | IntegrationRow | None = (
        await ctx.session.get(ChannelRow, row.target_id, with_for_update=True)
        if row.target == "channel"
        else await ctx.session.get(IntegrationRow, row.target_id, with_for_update=True)
    )
    limit = target.rate_limit_per_minute if target is not None else 1
    return outgoing, target, limit


async def send(
    ctx: Context,
    target: ChannelRow | IntegrationRow,
    outgoing: Outgoing,
    timeout: float,  # noqa: ASYNC109  (handed to httpx and Apprise, which time out themselves)
) -> None:
    """Send ``outgoing`` to a channel or an integration (``SendError`` on failure)."""
    import httpx  # the first delivery pays for it, not the server's start

    keeper = runtime(ctx).vault
    try:
        if isinstance(target, IntegrationRow):
            secret = keeper.decrypt(target.secret)
            url, headers = target.url, msgspec.json.decode(target.headers)
            config: AppriseConfig | WebhookConfig | None = None
        else:
            config = unseal(keeper, target)  # type: ignore[assignment]
    except vault.NoKey:
        raise SendError("The server's CHECKSTACK_SECRET_KEY cannot decrypt the secret") from None
    if isinstance(config, AppriseConfig):
        await send_apprise(config.url, outgoing, timeout)
        return
    if isinstance(config, WebhookConfig):
        url, secret, headers = config.url, config.secret, dict(config.headers)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        await send_webhook(client, url, secret, headers, outgoing)


async def deliver(ctx: Context, delivery_id: str) -> None:
    """One attempt of one delivery (the ``notification.deliver`` job)."""
    settings = runtime(ctx).settings
    session = ctx.session
    now = utcnow()
    row = await session.get(DeliveryRow, delivery_id)
    if row is None or row.status != "pending":
        return
    if row.locked_until is not None and row.locked_until > now:
        return  # an attempt is in flight elsewhere; its own outcome schedules the next
    if row.next_attempt_at is not None and row.next_attempt_at > now + timedelta(seconds=0.5):
        at = row.next_attempt_at
        await session.commit()
        await schedule(ctx, delivery_id, row.attempts, at)
        return
    outgoing, target, limit = await _outgoing(ctx, row)
    if target is None or not target.enabled:
        row.status = "failed"
        row.last_error = f"The {row.target} was deleted or disabled"
        row.next_attempt_at = None
        session.add(row)
        return
    allowed = await _rate_limited(ctx, row, limit, now)
    if allowed > now:
        row.next_attempt_at = allowed
        session.add(row)
        attempts = row.attempts
        await session.commit()
        await schedule(ctx, delivery_id, attempts, allowed)
        return
    seen = row.attempts
    claimed = await session.exec(
        sa.update(DeliveryRow)
        .where(
            col(DeliveryRow.id) == delivery_id,
            col(DeliveryRow.status) == "pending",
            col(DeliveryRow.attempts) == seen,
        )
        .values(
            attempts=seen + 1,
            last_attempt_at=now,
            locked_until=now + timedelta(seconds=settings.lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return  # another worker took this attempt
    # Commit the claim and hand the connection back before talking to the outside world.
    await session.commit()
    started = time.monotonic()
    error: str | None = None
    try:
        await send(ctx, target, outgoing, settings.request_timeout_seconds)
    except SendError as exc:
        error = str(exc)
    except Exception as exc:  # a bug or an odd library error: logged, never the message body
        ctx.logger.exception("Delivery %s failed unexpectedly", delivery_id)
        error = f"Internal error: {type(exc).__name__}"
    duration = int((time.monotonic() - started) * 1000)
    await _record(ctx, delivery_id, seen + 1, error, duration, settings)


async def _record(
    ctx: Context, delivery_id: str, attempts: int, error: str | None, duration: int, s: Settings
) -> None:
    session = ctx.session
    now = utcnow()
    # A delivered message keeps the error of its last failed attempt: the log tells both.
    values: dict[str, object] = {"locked_until": None, "duration_ms": duration}
    if error is not None:
        values["last_error"] = error
    retry_at: datetime | None = None
    if error is None:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif attempts >= s.max_attempts:
        values.update(status="failed", next_attempt_at=None)
    else:
        retry_at = now + backoff(s, attempts)
        values.update(next_attempt_at=retry_at)
    await session.exec(
        sa.update(DeliveryRow)
        .where(col(DeliveryRow.id) == delivery_id, col(DeliveryRow.attempts) == attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    if retry_at is not None:
        await schedule(ctx, delivery_id, attempts, retry_at)


async def test_channel(ctx: Context, row: ChannelRow) -> tuple[bool, str | None, int]:
    """Send a test message to a channel now (no outbox: the caller waits for the answer)."""
    settings = runtime(ctx).settings
    delivery_id = f"test-{int(time.time() * 1000)}"
    title = "Checkstack test notification"
    body = f"This is a test message for the channel \u201c{row.name}\u201d."
    outgoing = Outgoing(
        delivery_id=delivery_id,
        event="notification.channel.test",
        title=title,
        body=body,
        importance="info",
        json_body=msgspec.json.encode(
            {
                "deliveryId": delivery_id,
                "event": "notification.channel.test",
                "kind": "test",
                "title": title,
                "body": body,
                "importance": "info",
            }
        ),
    )
    started = time.monotonic()
    try:
        await send(ctx, row, outgoing, settings.request_timeout_seconds)
    except SendError as exc:
        return False, str(exc), int((time.monotonic() - started) * 1000)
    return True, None, int((time.monotonic() - started) * 1000)
