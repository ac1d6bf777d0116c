"""Domain logic of the notification plugin: channels, users' channel choices, subscriptions,
the inbox, integrations and reading the delivery log. Triggers are in :mod:`.triggers`, the
outbox's delivery in :mod:`.outbox`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, cast

import msgspec
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Forbidden, Level, NotFound, ServiceRef, Unauthorized, vault
from checkstack_core.db import utcnow
from checkstack_core.errors import validation_error

from .contract import (
    Channel,
    ChannelChanges,
    ChannelChoice,
    ChannelChoices,
    ChannelList,
    ChannelSelection,
    DeliveriesInput,
    Delivery,
    DeliveryPage,
    EventTypeInfo,
    EventTypeList,
    Integration,
    IntegrationChanges,
    IntegrationList,
    MarkReadInput,
    NewChannel,
    NewIntegration,
    Notification,
    NotificationPage,
    NotificationsInput,
    SigningSecret,
    SubscribeInput,
    Subscription,
    SubscriptionList,
    TeamSubscribeInput,
    WebhookUrl,
)
from .models import (
    ChannelChoiceRow,
    ChannelRow,
    DeliveryRow,
    IntegrationRow,
    NotificationRow,
    NotificationSystemRow,
    SubscriptionRow,
)
from .senders import RESERVED_HEADERS, check_apprise_url

SYSTEM = "catalog.system"
CATALOG_READ = "catalog.catalog.read"
#: The key purpose of the plugin's secrets (see :class:`checkstack_core.vault.Vault`); never
#: change it: stored secrets were encrypted under it.
VAULT_PURPOSE = b"checkstack notification secrets v1"
NO_KEY = "CHECKSTACK_SECRET_KEY must be set to store channel secrets"


# -- settings and the per-process runtime ---------------------------------------------------------


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.notification]`` of ``checkstack.toml``."""

    #: The first retry waits this long; each further one twice as long (capped below).
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    #: Attempts in all before a delivery is marked failed.
    max_attempts: int = 8
    #: Time allowed for one attempt (connect, send, answer).
    request_timeout_seconds: float = 10.0
    #: How often pending deliveries whose job was lost (a restart) are looked for.
    sweep_seconds: float = 30.0
    #: Days finished deliveries (the delivery logs) and inbox entries are kept.
    retention_days: int = 30

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Settings:
        settings = msgspec.convert(raw, cls)
        checks = {
            "retry_base_seconds": 0.01 <= settings.retry_base_seconds <= 86_400,
            "retry_max_seconds": settings.retry_base_seconds <= settings.retry_max_seconds,
            "max_attempts": 1 <= settings.max_attempts <= 100,
            "request_timeout_seconds": 0.1 <= settings.request_timeout_seconds <= 300,
            "sweep_seconds": 0.1 <= settings.sweep_seconds <= 86_400,
            "retention_days": 1 <= settings.retention_days <= 3650,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"[plugins.notification] {name} is out of range")
        return settings

    @property
    def lease_seconds(self) -> float:
        """How long an attempt in flight keeps its delivery from others (then it is retried)."""
        return self.request_timeout_seconds * 3 + 5


@dataclass
class Runtime:
    """What the plugin holds per process (provided as a service at startup)."""

    settings: Settings
    vault: vault.Vault


RUNTIME = ServiceRef[Runtime]("notification.runtime")


def runtime(ctx: Context) -> Runtime:
    return ctx.service(RUNTIME)


def new_id() -> str:
    return uuid.uuid4().hex


# -- channel configs ------------------------------------------------------------------------------

SecretSigningKey = Annotated[
    str, msgspec.Meta(min_length=16, max_length=500, extra_json_schema={"x-secret": True})
]


class AppriseConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    #: Any Apprise URL (https://appriseit.com/services/); it holds credentials: a secret.
    url: vault.Secret


class WebhookConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    url: WebhookUrl
    secret: SecretSigningKey
    headers: dict[str, Annotated[str, msgspec.Meta(max_length=2000)]] = msgspec.field(
        default_factory=dict
    )


CONFIG_TYPES: dict[str, type[msgspec.Struct]] = {"apprise": AppriseConfig, "webhook": WebhookConfig}


def _issue(message: str, *path: Any) -> Exception:
    return validation_error([{"message": message, "path": list(path)}])


def _check_headers(headers: dict[str, str], *path: Any) -> None:
    for name in headers:
        if name.lower() in RESERVED_HEADERS or not name or any(c in name for c in ":\r\n "):
            raise _issue(f"Header {name!r} cannot be set", *path, name)
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise _issue("Header values cannot contain line breaks", *path, name)


def parse_config(kind: str, config: dict[str, Any]) -> msgspec.Struct:
    """``config`` (plain secrets) checked against the kind's type; ``400`` otherwise."""
    try:
        parsed = msgspec.convert(config, CONFIG_TYPES[kind])
    except msgspec.ValidationError as exc:
        # msgspec says where: "... - at `$.url`"; keep the message, never the value.
        raise _issue(str(exc).split(" - at ")[0], "config") from None
    if isinstance(parsed, AppriseConfig):
        problem = check_apprise_url(parsed.url)
        if problem:
            raise _issue(problem, "config", "url")
    if isinstance(parsed, WebhookConfig):
        _check_headers(parsed.headers, "config", "headers")
    return parsed


def seal(keeper: vault.Vault, kind: str, config: dict[str, Any]) -> str:
    """The stored JSON of a plain ``config``: every secret encrypted."""
    paths = vault.secret_paths(CONFIG_TYPES[kind])

    def encrypt(value: Any, _path: tuple[Any, ...]) -> Any:
        try:
            return keeper.encrypt(value)
        except vault.NoKey:
            raise _issue(NO_KEY, "config") from None

    return msgspec.json.encode(vault.transform(config, paths, encrypt)).decode()


def unseal(keeper: vault.Vault, row: ChannelRow) -> msgspec.Struct:
    """The channel's config with its secrets decrypted (``vault.NoKey`` without the key)."""
    paths = vault.secret_paths(CONFIG_TYPES[row.kind])
    plain = vault.transform(msgspec.json.decode(row.config), paths, lambda v, _p: keeper.decrypt(v))
    return msgspec.convert(plain, CONFIG_TYPES[row.kind])


def channel_out(row: ChannelRow) -> Channel:
    paths = vault.secret_paths(CONFIG_TYPES[row.kind])
    return Channel(
        id=row.id,
        name=row.name,
        kind=cast(Any, row.kind),
        config=vault.mask(msgspec.json.decode(row.config), paths),
        enabled=row.enabled,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def channel_row(session: AsyncSession, channel_id: str) -> ChannelRow:
    row = await session.get(ChannelRow, channel_id)
    if row is None:
        raise NotFound(f"Channel not found: {channel_id}")
    return row


async def list_channels(ctx: Context) -> ChannelList:
    rows = await ctx.session.exec(select(ChannelRow).order_by(col(ChannelRow.name)))
    return ChannelList(channels=[channel_out(row) for row in rows])


async def get_channel(ctx: Context, channel_id: str) -> Channel:
    return channel_out(await channel_row(ctx.session, channel_id))


async def create_channel(ctx: Context, input: NewChannel) -> Channel:
    name = _text(input.name, "name")
    plain = msgspec.to_builtins(parse_config(input.kind, input.config))
    row = ChannelRow(
        id=new_id(),
        name=name,
        kind=input.kind,
        config=seal(runtime(ctx).vault, input.kind, plain),
        enabled=input.enabled,
        rate_limit_per_minute=input.rate_limit_per_minute,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    return channel_out(row)


async def update_channel(ctx: Context, input: ChannelChanges) -> Channel:
    row = await channel_row(ctx.session, input.id)
    keeper = runtime(ctx).vault
    if input.name is not None:
        row.name = _text(input.name, "name")
    if input.config is not None:
        paths = vault.secret_paths(CONFIG_TYPES[row.kind])
        merged = vault.merge_masks(input.config, msgspec.json.decode(row.config), paths)
        try:
            plain = vault.transform(merged, paths, lambda v, _p: keeper.decrypt(v))
        except vault.NoKey:
            raise _issue(NO_KEY, "config") from None
        normal = msgspec.to_builtins(parse_config(row.kind, plain))
        row.config = seal(keeper, row.kind, normal)
    if input.enabled is not None:
        row.enabled = input.enabled
    if input.rate_limit_per_minute is not None:
        row.rate_limit_per_minute = input.rate_limit_per_minute
    row.updated_at = utcnow()
    ctx.session.add(row)
    await ctx.session.flush()
    return channel_out(row)


async def delete_channel(ctx: Context, channel_id: str) -> None:
    row = await channel_row(ctx.session, channel_id)
    await ctx.session.exec(
        sa.delete(ChannelChoiceRow).where(col(ChannelChoiceRow.channel_id) == channel_id)
    )
    await _forget_deliveries(ctx.session, "channel", channel_id)
    await ctx.session.delete(row)
    await ctx.session.flush()


async def _forget_deliveries(session: AsyncSession, target: str, target_id: str) -> None:
    await session.exec(
        sa.delete(DeliveryRow).where(
            col(DeliveryRow.target) == target, col(DeliveryRow.target_id) == target_id
        )
    )


def _text(value: str, path: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise _issue("Must not be blank", path)
    return stripped


# -- a user's channels ----------------------------------------------------------------------------


async def my_channels(ctx: Context) -> ChannelChoices:
    user_id = caller_id(ctx)
    rows = await ctx.session.exec(
        select(ChannelRow).where(col(ChannelRow.enabled).is_(True)).order_by(col(ChannelRow.name))
    )
    chosen = set(
        await ctx.session.exec(
            select(col(ChannelChoiceRow.channel_id)).where(col(ChannelChoiceRow.user_id) == user_id)
        )
    )
    return ChannelChoices(
        channels=[
            ChannelChoice(id=r.id, name=r.name, kind=cast(Any, r.kind), selected=r.id in chosen)
            for r in rows
        ]
    )


async def set_my_channels(ctx: Context, input: ChannelSelection) -> ChannelChoices:
    user_id = caller_id(ctx)
    wanted = sorted(set(input.channel_ids))
    if wanted:
        found = set(
            await ctx.session.exec(
                select(col(ChannelRow.id)).where(
                    col(ChannelRow.id).in_(wanted), col(ChannelRow.enabled).is_(True)
                )
            )
        )
        for index, channel_id in enumerate(input.channel_ids):
            if channel_id not in found:
                raise _issue(f"Channel not found: {channel_id}", "channelIds", index)
    await ctx.session.exec(
        sa.delete(ChannelChoiceRow).where(col(ChannelChoiceRow.user_id) == user_id)
    )
    for channel_id in wanted:
        ctx.session.add(ChannelChoiceRow(user_id=user_id, channel_id=channel_id))
    await ctx.session.flush()
    return await my_channels(ctx)


def caller_id(ctx: Context) -> str:
    # The contract admits users only (caller="user"); the id is always set for them.
    assert ctx.principal.id is not None
    return ctx.principal.id


# -- subscriptions --------------------------------------------------------------------------------


def subscription_out(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        owner_kind=cast(Any, row.owner_kind),
        owner_id=row.owner_id,
        target_kind=cast(Any, row.target_kind),
        target_id=row.target_id,
        min_importance=cast(Any, row.min_importance),
        created_at=row.created_at,
    )


def _target(system_id: str | None, group_id: str | None) -> tuple[str, str]:
    if (system_id is None) == (group_id is None):
        raise _issue("Name exactly one of systemId and groupId", "systemId")
    return ("system", system_id) if system_id is not None else ("group", cast(str, group_id))


async def _check_target(ctx: Context, kind: str, target_id: str) -> None:
    """The caller must be able to read what it subscribes to, decided by the catalog's own
    checks (called as the caller): one it may not read answers like one that does not exist."""
    label = "System" if kind == "system" else "Group"
    try:
        if kind == "system":
            await ctx.call("catalog", "getSystem", {"id": target_id})
            return
        groups = await ctx.call("catalog", "getGroups")
    except (NotFound, Forbidden, Unauthorized):
        raise NotFound(f"{label} not found: {target_id}") from None
    if all(group.id != target_id for group in groups.groups):
        raise NotFound(f"{label} not found: {target_id}")


async def _subscribe(
    ctx: Context, owner_kind: str, owner_id: str, kind: str, target_id: str, importance: str
) -> Subscription:
    row = (
        await ctx.session.exec(
            select(SubscriptionRow).where(
                col(SubscriptionRow.owner_kind) == owner_kind,
                col(SubscriptionRow.owner_id) == owner_id,
                col(SubscriptionRow.target_kind) == kind,
                col(SubscriptionRow.target_id) == target_id,
            )
        )
    ).first()
    if row is None:
        row = SubscriptionRow(
            id=new_id(),
            owner_kind=owner_kind,
            owner_id=owner_id,
            target_kind=kind,
            target_id=target_id,
            min_importance=importance,
        )
    else:
        row.min_importance = importance
    ctx.session.add(row)
    await ctx.session.flush()
    return subscription_out(row)


async def subscribe(ctx: Context, input: SubscribeInput) -> Subscription:
    kind, target_id = _target(input.system_id, input.group_id)
    await _check_target(ctx, kind, target_id)
    return await _subscribe(ctx, "user", caller_id(ctx), kind, target_id, input.min_importance)


async def subscribe_team(ctx: Context, input: TeamSubscribeInput) -> Subscription:
    from checkstack_auth.contract import AUTH_ACCESS

    # Nobody acts on a team holding more than they do (the auth plugin's rule for teams).
    await ctx.service(AUTH_ACCESS).check_team(ctx, input.team_id)
    kind, target_id = _target(input.system_id, input.group_id)
    teams = await ctx.call("auth", "getTeams", as_service=True)
    if all(team.id != input.team_id for team in teams.teams):
        raise NotFound(f"Team not found: {input.team_id}")
    await _check_target(ctx, kind, target_id)
    return await _subscribe(ctx, "team", input.team_id, kind, target_id, input.min_importance)


async def list_subscriptions(
    ctx: Context, owner_kind: str, owner_id: str | None
) -> SubscriptionList:
    statement = select(SubscriptionRow).where(col(SubscriptionRow.owner_kind) == owner_kind)
    if owner_id is not None:
        statement = statement.where(col(SubscriptionRow.owner_id) == owner_id)
    rows = await ctx.session.exec(
        statement.order_by(col(SubscriptionRow.created_at), col(SubscriptionRow.id))
    )
    return SubscriptionList(subscriptions=[subscription_out(row) for row in rows])


async def unsubscribe(ctx: Context, subscription_id: str, owner_kind: str) -> None:
    row = await ctx.session.get(SubscriptionRow, subscription_id)
    # Another user's subscription answers like a missing one: ids are not probes.
    if (
        row is None
        or row.owner_kind != owner_kind
        or (owner_kind == "user" and row.owner_id != caller_id(ctx))
    ):
        raise NotFound(f"Subscription not found: {subscription_id}")
    if owner_kind == "team":
        from checkstack_auth.contract import AUTH_ACCESS

        await ctx.service(AUTH_ACCESS).check_team(ctx, row.owner_id)
    await ctx.session.delete(row)
    await ctx.session.flush()


# -- the inbox ------------------------------------------------------------------------------------


async def _visible_systems(ctx: Context, user_id: str) -> list[str] | None:
    """The systems of the caller's notifications it may read now (``None``: all of them)."""
    if ctx.principal.is_admin:
        return None
    connection = await ctx.session.connection()
    ids = list(
        (
            await connection.execute(
                sa.select(sa.distinct(col(NotificationSystemRow.system_id)))
                .join(
                    NotificationRow,
                    col(NotificationRow.id) == col(NotificationSystemRow.notification_id),
                )
                .where(col(NotificationRow.user_id) == user_id)
            )
        ).scalars()
    )
    admitted = await ctx.admitted_ids(SYSTEM, ids, Level.READ, rule_id=CATALOG_READ)
    return sorted(admitted)


def _inbox_filter(user_id: str, visible: list[str] | None) -> list[Any]:
    """WHERE clauses of the caller's inbox: its own rows, about a system it may read now."""
    clauses: list[Any] = [col(NotificationRow.user_id) == user_id]
    if visible is not None:
        clauses.append(
            sa.exists().where(
                col(NotificationSystemRow.notification_id) == col(NotificationRow.id),
                col(NotificationSystemRow.system_id).in_(visible),
            )
        )
    return clauses


async def _count(session: AsyncSession, clauses: list[Any]) -> int:
    connection = await session.connection()
    statement = sa.select(sa.func.count()).select_from(NotificationRow).where(*clauses)
    return int((await connection.execute(statement)).scalar_one())


async def notifications(ctx: Context, input: NotificationsInput) -> NotificationPage:
    user_id = caller_id(ctx)
    visible = await _visible_systems(ctx, user_id)
    clauses = _inbox_filter(user_id, visible)
    unread = [*clauses, col(NotificationRow.read_at).is_(None)]
    listed = unread if input.unread_only else clauses
    rows = list(
        await ctx.session.exec(
            select(NotificationRow)
            .where(*listed)
            .order_by(col(NotificationRow.created_at).desc(), col(NotificationRow.id))
            .limit(input.limit)
            .offset(input.offset)
        )
    )
    systems: dict[str, list[str]] = {row.id: [] for row in rows}
    if rows:
        for notification_id, system_id in await ctx.session.exec(
            select(col(NotificationSystemRow.notification_id), col(NotificationSystemRow.system_id))
            .where(col(NotificationSystemRow.notification_id).in_(list(systems)))
            .order_by(col(NotificationSystemRow.system_id))
        ):
            if visible is None or system_id in visible:
                systems[notification_id].append(system_id)
    return NotificationPage(
        notifications=[
            Notification(
                id=row.id,
                kind=row.kind,
                event=row.event,
                title=row.title,
                body=row.body,
                importance=cast(Any, row.importance),
                system_ids=systems[row.id],
                link=row.link,
                read=row.read_at is not None,
                created_at=row.created_at,
            )
            for row in rows
        ],
        total=await _count(ctx.session, listed),
        unread=await _count(ctx.session, unread),
    )


async def unread_count(ctx: Context) -> int:
    user_id = caller_id(ctx)
    visible = await _visible_systems(ctx, user_id)
    return await _count(
        ctx.session, [*_inbox_filter(user_id, visible), col(NotificationRow.read_at).is_(None)]
    )


async def mark_read(ctx: Context, input: MarkReadInput | None) -> int:
    """Mark the caller's notifications (``input.ids``, or all) read; how many changed."""
    user_id = caller_id(ctx)
    clauses = [col(NotificationRow.user_id) == user_id, col(NotificationRow.read_at).is_(None)]
    if input is not None:
        clauses.append(col(NotificationRow.id).in_(sorted(set(input.ids))))
    result = await ctx.session.exec(
        sa.update(NotificationRow)
        .where(*clauses)
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


# -- integrations ---------------------------------------------------------------------------------


def integration_out(row: IntegrationRow) -> Integration:
    return Integration(
        id=row.id,
        name=row.name,
        url=row.url,
        secret=vault.MASK,
        headers=msgspec.json.decode(row.headers),
        event_types=msgspec.json.decode(row.event_types),
        system_ids=msgspec.json.decode(row.system_ids),
        enabled=row.enabled,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _event_types(ctx: Context, names: Sequence[str]) -> str:
    known = {event.name for _plugin_id, event in ctx.host.declared_events()}
    for index, name in enumerate(names):
        if name != "*" and name not in known:
            raise _issue(f"Unknown event type {name!r} (see getEventTypes)", "eventTypes", index)
    return msgspec.json.encode(sorted(set(names))).decode()


def _encrypt_secret(keeper: vault.Vault, secret: str) -> str:
    try:
        msgspec.convert(secret, SigningSecret)
    except msgspec.ValidationError as exc:
        raise _issue(str(exc).split(" - at ")[0], "secret") from None
    try:
        return keeper.encrypt(secret)
    except vault.NoKey:
        raise _issue(NO_KEY, "secret") from None


def event_types(ctx: Context) -> EventTypeList:
    """Every event declared by a loaded plugin's contract: what integrations may subscribe to."""
    return EventTypeList(
        event_types=[
            EventTypeInfo(
                name=event.name,
                plugin_id=plugin_id,
                description=event.description,
                payload=event.payload,
            )
            for plugin_id, event in ctx.host.declared_events()
        ]
    )


async def list_integrations(ctx: Context) -> IntegrationList:
    rows = await ctx.session.exec(select(IntegrationRow).order_by(col(IntegrationRow.name)))
    return IntegrationList(integrations=[integration_out(row) for row in rows])


async def create_integration(ctx: Context, input: NewIntegration) -> Integration:
    _check_headers(input.headers, "headers")
    row = IntegrationRow(
        id=new_id(),
        name=_text(input.name, "name"),
        url=input.url,
        secret=_encrypt_secret(runtime(ctx).vault, input.secret),
        headers=msgspec.json.encode(input.headers).decode(),
        event_types=_event_types(ctx, input.event_types),
        system_ids=msgspec.json.encode(sorted(set(input.system_ids))).decode(),
        enabled=input.enabled,
        rate_limit_per_minute=input.rate_limit_per_minute,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    return integration_out(row)


async def _integration(session: AsyncSession, integration_id: str) -> IntegrationRow:
    row = await session.get(IntegrationRow, integration_id)
    if row is None:
        raise NotFound(f"Integration not found: {integration_id}")
    return row


async def update_integration(ctx: Context, input: IntegrationChanges) -> Integration:
    row = await _integration(ctx.session, input.id)
    if input.name is not None:
        row.name = _text(input.name, "name")
    if input.url is not None:
        row.url = input.url
    if input.secret is not None and input.secret != vault.MASK:
        row.secret = _encrypt_secret(runtime(ctx).vault, input.secret)
    if input.headers is not None:
        _check_headers(input.headers, "headers")
        row.headers = msgspec.json.encode(input.headers).decode()
    if input.event_types is not None:
        row.event_types = _event_types(ctx, input.event_types)
    if input.system_ids is not None:
        row.system_ids = msgspec.json.encode(sorted(set(input.system_ids))).decode()
    if input.enabled is not None:
        row.enabled = input.enabled
    if input.rate_limit_per_minute is not None:
        row.rate_limit_per_minute = input.rate_limit_per_minute
    row.updated_at = utcnow()
    ctx.session.add(row)
    await ctx.session.flush()
    return integration_out(row)


async def delete_integration(ctx: Context, integration_id: str) -> None:
    row = await _integration(ctx.session, integration_id)
    await _forget_deliveries(ctx.session, "integration", integration_id)
    await ctx.session.delete(row)
    await ctx.session.flush()


# -- the delivery log -----------------------------------------------------------------------------


def delivery_out(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        target=cast(Any, row.target),
        target_id=row.target_id,
        user_id=row.user_id,
        event=row.event,
        status=cast(Any, row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        duration_ms=row.duration_ms,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        delivered_at=row.delivered_at,
    )


async def deliveries(ctx: Context, target: str, input: DeliveriesInput) -> DeliveryPage:
    clauses: list[Any] = [col(DeliveryRow.target) == target]
    if input.target_id is not None:
        clauses.append(col(DeliveryRow.target_id) == input.target_id)
    if input.status is not None:
        clauses.append(col(DeliveryRow.status) == input.status)
    rows = await ctx.session.exec(
        select(DeliveryRow)
        .where(*clauses)
        .order_by(col(DeliveryRow.created_at).desc(), col(DeliveryRow.id))
        .limit(input.limit)
        .offset(input.offset)
    )
    connection = await ctx.session.connection()
    total = (
        await connection.execute(
            sa.select(sa.func.count()).select_from(DeliveryRow).where(*clauses)
        )
    ).scalar_one()
    return DeliveryPage(deliveries=[delivery_out(row) for row in rows], total=int(total))


async def apply_retention(ctx: Context) -> dict[str, int]:
    """Delete finished deliveries (delivered or failed) and inbox entries older than
    ``retention_days``; how many of each. Pending deliveries stay, however old: they still have
    attempts to make."""
    cutoff = utcnow() - timedelta(days=runtime(ctx).settings.retention_days)
    deliveries = await ctx.session.exec(
        sa.delete(DeliveryRow).where(
            col(DeliveryRow.status).in_(("delivered", "failed")),
            col(DeliveryRow.created_at) < cutoff,
        )
    )
    old_entries = select(col(NotificationRow.id)).where(col(NotificationRow.created_at) < cutoff)
    await ctx.session.exec(
        sa.delete(NotificationSystemRow).where(
            col(NotificationSystemRow.notification_id).in_(old_entries)
        )
    )
    entries = await ctx.session.exec(
        sa.delete(NotificationRow).where(col(NotificationRow.created_at) < cutoff)
    )
    return {"deliveries": deliveries.rowcount, "notifications": entries.rowcount}
