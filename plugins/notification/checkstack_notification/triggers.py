"""From an event to inbox entries and deliveries (the outbox), in the event handler's transaction.

A trigger (a health change, an incident or maintenance event) reaches the users subscribed to an
affected system or to a group holding one, directly or through a team, whose minimum importance
it meets, and who may read the system now (the source plugin's read rule and the catalog's,
team grants included). Each such user gets one inbox entry and one delivery per chosen channel,
however many of their subscriptions matched: rows are keyed by the event id, so a redelivered
event adds nothing. Health changes while a suppressing maintenance or incident covers the system
notify nobody (SPEC §6.2).

Integrations get every event of their types (and systems) as one delivery each, keyed the same
way. Deliveries are announced with ``notification.deliveries.queued`` once they have committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlmodel import col, select

from checkstack_core import Context, Event, Level, Principal

from .contract import DELIVERIES_QUEUED, IMPORTANCE_RANK, INBOX
from .models import (
    ChannelChoiceRow,
    ChannelRow,
    DeliveryRow,
    IntegrationRow,
    NotificationRow,
    NotificationSystemRow,
    SubscriptionRow,
)
from .senders import message_json
from .service import CATALOG_READ, SYSTEM, new_id

HEALTH = {
    "healthy": ("System health restored", "info", "is healthy again"),
    "degraded": ("System health degraded", "warning", "is degraded"),
    "unhealthy": ("System health critical", "critical", "is unhealthy"),
}
SEVERITY_IMPORTANCE = {"critical": "critical", "major": "warning", "minor": "info"}


@dataclass(frozen=True, slots=True)
class Trigger:
    """What one event tells subscribers."""

    key: str
    kind: str
    event: str
    title: str
    body: str
    importance: str
    system_ids: list[str]
    #: The source plugin's read rule: a user must hold it (or a team grant) for the system.
    rule: str


# -- building triggers from events ----------------------------------------------------------------


async def _systems(ctx: Context, ids: Iterable[str]) -> list[Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    found = await ctx.call("catalog", "resolveSystems", {"ids": wanted}, as_service=True)
    return list(found.systems)


async def _suppressed(ctx: Context, payload: dict[str, Any]) -> bool:
    """The healthcheck plugin decided it in the change's transaction (``suppressed``); an event
    without the flag asks the maintenance and incident plugins' services now."""
    if "suppressed" in payload:
        return bool(payload["suppressed"])
    for ref in ("maintenance.status", "incident.status"):
        provider = ctx.host.services.get(ref)
        if provider is None:
            continue
        try:
            if await provider.suppressed(payload["systemId"], ctx=ctx):
                return True
        except Exception:
            ctx.logger.warning("Asking %s about suppression failed", ref)
    return False


async def health_trigger(ctx: Context, event: Event) -> Trigger | None:
    payload = event.payload
    status = str(payload.get("status") or event.name.rsplit(".", 1)[-1])
    if status not in HEALTH or await _suppressed(ctx, payload):
        return None
    systems = await _systems(ctx, [payload["systemId"]])
    if not systems:
        return None
    title, importance, verb = HEALTH[status]
    name = systems[0].name
    healthy, total = payload.get("healthyChecks"), payload.get("totalChecks")
    detail = f" ({healthy} of {total} checks healthy)" if total is not None else ""
    return Trigger(
        key=event.id,
        kind="health",
        event=event.name,
        title=f"{title}: {name}",
        body=f"{name} {verb}{detail}.",
        importance=importance,
        system_ids=[systems[0].id],
        rule="healthcheck.status.read",
    )


async def incident_trigger(ctx: Context, event: Event) -> Trigger | None:
    payload = event.payload
    verb = event.name.rsplit(".", 1)[-1]
    label = {"created": "reported", "updated": "updated", "resolved": "resolved"}[verb]
    importance = (
        "info"
        if verb == "resolved"
        else SEVERITY_IMPORTANCE.get(str(payload.get("severity")), "warning")
    )
    title = str(payload.get("title", ""))
    status = payload.get("status")
    return Trigger(
        key=event.id,
        kind="incident",
        event=event.name,
        title=f"Incident {label}: {title}",
        body=f"The incident \u201c{title}\u201d was {label}"
        + (f" (status: {status})." if status else "."),
        importance=importance,
        system_ids=[str(s) for s in payload.get("systemIds", [])],
        rule="incident.incident.read",
    )


async def maintenance_trigger(ctx: Context, event: Event) -> Trigger | None:
    payload = event.payload
    verb = event.name.rsplit(".", 1)[-1]
    if verb == "status_changed":
        if payload.get("toStatus") != "in_progress":
            return None  # completions have their own event; cancellations notify nobody
        label = "started"
    else:
        label = {"created": "scheduled", "completed": "completed"}[verb]
    title = payload.get("title")
    if title is None:
        try:
            window = await ctx.call(
                "maintenance", "getWindow", {"id": payload["windowId"]}, as_service=True
            )
            title = window.title
        except Exception:
            title = payload["windowId"]
    return Trigger(
        key=event.id,
        kind="maintenance",
        event=event.name,
        title=f"Maintenance {label}: {title}",
        body=f"The maintenance \u201c{title}\u201d was {label}.",
        importance="info",
        system_ids=[str(s) for s in payload.get("systemIds", [])],
        rule="maintenance.maintenance.read",
    )


# -- who gets it ----------------------------------------------------------------------------------


async def _interested_users(ctx: Context, trigger: Trigger, systems: list[Any]) -> dict[str, set]:
    """User id → the affected systems their subscriptions (own or their teams') cover."""
    rank = IMPORTANCE_RANK[trigger.importance]
    system_ids = [s.id for s in systems]
    groups: dict[str, set[str]] = {}
    for system in systems:
        for group_id in system.group_ids:
            groups.setdefault(group_id, set()).add(system.id)
    subscriptions = await ctx.session.exec(
        select(SubscriptionRow).where(
            sa.or_(
                sa.and_(
                    col(SubscriptionRow.target_kind) == "system",
                    col(SubscriptionRow.target_id).in_(system_ids),
                ),
                sa.and_(
                    col(SubscriptionRow.target_kind) == "group",
                    col(SubscriptionRow.target_id).in_(sorted(groups)),
                ),
            )
        )
    )
    from checkstack_auth.contract import AUTH_ACCESS

    access = ctx.service(AUTH_ACCESS)
    members: dict[str, list[str]] = {}
    users: dict[str, set[str]] = {}
    for sub in subscriptions:
        if IMPORTANCE_RANK.get(sub.min_importance, 0) > rank:
            continue
        covered = {sub.target_id} if sub.target_kind == "system" else groups[sub.target_id]
        if sub.owner_kind == "user":
            owners = [sub.owner_id]
        else:
            if sub.owner_id not in members:
                members[sub.owner_id] = await access.team_members(ctx, sub.owner_id)
            owners = members[sub.owner_id]
        for user_id in owners:
            users.setdefault(user_id, set()).update(covered)
    return users


async def _readable(ctx: Context, principal: Principal, rule: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` ``principal`` may read, by ``rule`` and by the catalog's read rule."""
    auth = ctx.host.auth
    both = set(ids)
    for rule_id in (CATALOG_READ, rule):
        both &= await auth.admitted_ids(
            principal, SYSTEM, sorted(both), Level.READ, principal.holds(rule_id), uow=ctx.uow
        )
        if not both:
            break
    return both


async def notify(ctx: Context, trigger: Trigger) -> list[str]:
    """Write the inbox entries and channel deliveries of ``trigger``; the new delivery ids."""
    session = ctx.session
    systems = await _systems(ctx, trigger.system_ids)
    if not systems:
        return []
    from checkstack_auth.contract import AUTH_ACCESS

    access = ctx.service(AUTH_ACCESS)
    already = set(
        await session.exec(
            select(col(NotificationRow.user_id)).where(
                col(NotificationRow.trigger_key) == trigger.key
            )
        )
    )
    link = f"/systems/{systems[0].id}"
    queued: list[str] = []
    interested = await _interested_users(ctx, trigger, systems)
    for user_id in sorted(interested):
        if user_id in already:
            continue  # a redelivered event: this user has it
        principal = await access.user_principal(ctx, user_id)
        if principal is None or not principal.holds(INBOX):
            continue
        visible = sorted(await _readable(ctx, principal, trigger.rule, sorted(interested[user_id])))
        if not visible:
            continue
        notification = NotificationRow(
            id=new_id(),
            user_id=user_id,
            trigger_key=trigger.key,
            kind=trigger.kind,
            event=trigger.event,
            title=trigger.title[:500],
            body=trigger.body,
            importance=trigger.importance,
            link=link,
        )
        session.add(notification)
        await session.flush()
        for system_id in visible:
            session.add(NotificationSystemRow(notification_id=notification.id, system_id=system_id))
        channels = await session.exec(
            select(col(ChannelRow.id))
            .join(ChannelChoiceRow, col(ChannelChoiceRow.channel_id) == col(ChannelRow.id))
            .where(col(ChannelChoiceRow.user_id) == user_id, col(ChannelRow.enabled).is_(True))
            .order_by(col(ChannelRow.id))
        )
        for channel_id in channels:
            delivery_id = new_id()
            body = message_json(
                deliveryId=delivery_id,
                event=trigger.event,
                kind=trigger.kind,
                title=trigger.title,
                body=trigger.body,
                importance=trigger.importance,
                systemIds=visible,
                link=link,
                notificationId=notification.id,
                recipient={"userId": user_id, "name": principal.name},
                createdAt=notification.created_at.isoformat(),
            )
            session.add(
                DeliveryRow(
                    id=delivery_id,
                    dedup_key=f"{trigger.key}:{user_id}:{channel_id}",
                    target="channel",
                    target_id=channel_id,
                    user_id=user_id,
                    event=trigger.event,
                    message=body.decode(),
                    next_attempt_at=notification.created_at,
                )
            )
            queued.append(delivery_id)
    await session.flush()
    return queued


# -- integrations ---------------------------------------------------------------------------------


def _about(payload: dict[str, Any]) -> set[str]:
    ids = {str(i) for i in payload.get("systemIds") or []}
    if payload.get("systemId"):
        ids.add(str(payload["systemId"]))
    return ids


async def forward(ctx: Context, event: Event) -> list[str]:
    """One delivery per enabled integration subscribed to ``event``; the new delivery ids."""
    session = ctx.session
    rows = await session.exec(select(IntegrationRow).where(col(IntegrationRow.enabled).is_(True)))
    about = _about(event.payload)
    queued: list[str] = []
    for row in rows:
        types = msgspec.json.decode(row.event_types)
        if event.name not in types and "*" not in types:
            continue
        systems = set(msgspec.json.decode(row.system_ids))
        if systems and not systems & about:
            continue
        key = f"{event.id}:{row.id}"
        exists = (
            await session.exec(select(col(DeliveryRow.id)).where(col(DeliveryRow.dedup_key) == key))
        ).first()
        if exists is not None:
            continue
        delivery_id = new_id()
        body = message_json(
            deliveryId=delivery_id,
            event=event.name,
            eventId=event.id,
            emittedAt=event.emitted_at.isoformat(),
            payload=event.payload,
        )
        session.add(
            DeliveryRow(
                id=delivery_id,
                dedup_key=key,
                target="integration",
                target_id=row.id,
                event=event.name,
                message=body.decode(),
                next_attempt_at=event.emitted_at,
            )
        )
        queued.append(delivery_id)
    await session.flush()
    return queued


async def announce(ctx: Context, ids: list[str]) -> None:
    """Tell the delivery workers, once this transaction has committed."""
    if ids:
        await ctx.emit(DELIVERIES_QUEUED, {"ids": ids})
