"""The notification plugin's contract: access rules, wire types, procedures and events.

Importable without the server. Channels (administrators) are where messages go: any Apprise URL
or a signed webhook. Users (and teams) subscribe to catalog systems and groups with a minimum
importance and choose their channels; every trigger lands in their in-app inbox and, through an
outbox of deliveries, on their channels. Integrations are outgoing webhooks for any plugin's
events. Access to a notification follows access to the systems it is about (``catalog.system``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from checkstack_core import AccessRule, Contract, Schema, mutation, query

PLUGIN_ID = "notification"

channel_manage = AccessRule(
    "channel", "manage", "Configure notification channels and read their delivery log"
)
integration_manage = AccessRule(
    "integration", "manage", "Configure outgoing integration webhooks and read their delivery log"
)
subscription_manage = AccessRule(
    "subscription", "manage", "Subscribe teams to notifications about systems and groups"
)
inbox = AccessRule(
    "notification",
    "read",
    "Read your own notifications and choose your subscriptions and channels",
    default=True,
)
CHANNEL_MANAGE = channel_manage.qualified_id(PLUGIN_ID)
INTEGRATION_MANAGE = integration_manage.qualified_id(PLUGIN_ID)
SUBSCRIPTION_MANAGE = subscription_manage.qualified_id(PLUGIN_ID)
INBOX = inbox.qualified_id(PLUGIN_ID)

# -- value types ----------------------------------------------------------------------------------

ChannelKind = Literal["apprise", "webhook"]
Importance = Literal["info", "warning", "critical"]
#: Order of importance: a subscription with ``minImportance`` gets that level and above.
IMPORTANCE_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
TargetKind = Literal["system", "group"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
DeliveryTarget = Literal["channel", "integration"]

MAX_PAGE = 100
_MAX_OFFSET = 2**31 - 1
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=_MAX_OFFSET)]
RateLimit = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
#: An event name (``<pluginId>.<thing>.<verb>``) or ``*`` for every declared event.
EventType = Annotated[
    str, msgspec.Meta(max_length=200, pattern=r"^(\*|[a-z][a-z0-9-]*(\.[A-Za-z0-9_-]+)+)$")
]
WebhookUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"^https?://")]
#: A webhook signing secret (HMAC-SHA-256 key): long enough that guessing it is hopeless.
SigningSecret = Annotated[str, msgspec.Meta(min_length=16, max_length=500)]

# -- channels -------------------------------------------------------------------------------------


class Channel(Schema):
    """A destination administrators configure. ``config`` holds the kind's settings with every
    secret (the Apprise URL, the webhook's signing secret) masked as ``********``."""

    id: str
    name: str
    kind: ChannelKind
    config: dict[str, Any]
    enabled: bool
    rate_limit_per_minute: int
    created_at: datetime
    updated_at: datetime


class ChannelList(Schema):
    channels: list[Channel]


class NewChannel(Schema):
    name: Name
    kind: ChannelKind
    #: ``apprise``: ``{"url": "<any Apprise URL>"}``; ``webhook``: ``{"url": "https://...",
    #: "secret": "<at least 16 characters>", "headers": {...}}``.
    config: dict[str, Any]
    enabled: bool = True
    rate_limit_per_minute: RateLimit = 60


class ChannelChanges(Schema):
    id: Id
    name: Name | None = None
    #: The whole config; a secret sent back as ``********`` keeps the stored one.
    config: dict[str, Any] | None = None
    enabled: bool | None = None
    rate_limit_per_minute: RateLimit | None = None


class ChannelId(Schema):
    id: Id


class Deleted(Schema):
    id: str


class TestResult(Schema):
    """The outcome of one test message (``error`` never holds a secret)."""

    ok: bool
    error: str | None
    duration_ms: int


# -- the user's channel choices ------------------------------------------------------------------


class ChannelChoice(Schema):
    """A channel as a user sees it: its name and kind, never its configuration."""

    id: str
    name: str
    kind: ChannelKind
    selected: bool


class ChannelChoices(Schema):
    channels: list[ChannelChoice]


class ChannelSelection(Schema):
    #: The enabled channels this user's notifications go to (besides the inbox); replaces the set.
    channel_ids: Annotated[list[Id], msgspec.Meta(max_length=100)]


# -- subscriptions --------------------------------------------------------------------------------


class Subscription(Schema):
    id: str
    #: ``user`` or ``team``, and whose.
    owner_kind: Literal["user", "team"]
    owner_id: str
    target_kind: TargetKind
    target_id: str
    min_importance: Importance
    created_at: datetime


class SubscriptionList(Schema):
    subscriptions: list[Subscription]


class SubscribeInput(Schema):
    """Exactly one of ``systemId`` and ``groupId``."""

    system_id: Id | None = None
    group_id: Id | None = None
    min_importance: Importance = "info"


class TeamSubscribeInput(Schema):
    team_id: Id
    system_id: Id | None = None
    group_id: Id | None = None
    min_importance: Importance = "info"


class SubscriptionId(Schema):
    id: Id


class TeamSubscriptionId(Schema):
    subscription_id: Id


class TeamFilter(Schema):
    team_id: Id | None = None


# -- the inbox ------------------------------------------------------------------------------------


class Notification(Schema):
    id: str
    #: ``health``, ``incident`` or ``maintenance``.
    kind: str
    #: The event that caused it (``healthcheck.system.unhealthy``...).
    event: str
    title: str
    body: str
    importance: Importance
    #: The affected systems this user may read.
    system_ids: list[str]
    #: A path in the web UI to look at (``/catalog/systems/<id>``...), or null.
    link: str | None
    read: bool
    created_at: datetime


class NotificationsInput(Schema):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 20
    offset: Offset = 0
    unread_only: bool = False


class NotificationPage(Schema):
    notifications: list[Notification]
    total: int
    unread: int


class UnreadCount(Schema):
    count: int


class MarkReadInput(Schema):
    ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_PAGE)]


class Marked(Schema):
    #: How many notifications changed from unread to read.
    count: int


# -- integrations ---------------------------------------------------------------------------------


class Integration(Schema):
    """An outgoing webhook for events of any plugin; ``secret`` is always masked."""

    id: str
    name: str
    url: str
    secret: str
    headers: dict[str, str]
    event_types: list[str]
    #: Only events about these systems (``systemId``/``systemIds`` in the payload); empty: all.
    system_ids: list[str]
    enabled: bool
    rate_limit_per_minute: int
    created_at: datetime
    updated_at: datetime


class IntegrationList(Schema):
    integrations: list[Integration]


Headers = Annotated[dict[str, Annotated[str, msgspec.Meta(max_length=2000)]], msgspec.Meta()]


class NewIntegration(Schema):
    name: Name
    url: WebhookUrl
    secret: SigningSecret
    event_types: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=200)]
    headers: Headers = msgspec.field(default_factory=dict)
    system_ids: Annotated[list[Id], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    enabled: bool = True
    rate_limit_per_minute: RateLimit = 60


class IntegrationChanges(Schema):
    id: Id
    name: Name | None = None
    url: WebhookUrl | None = None
    #: A new secret; ``********`` (or leaving it out) keeps the stored one.
    secret: str | None = None
    event_types: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=200)] | None = (
        None
    )
    headers: Headers | None = None
    system_ids: Annotated[list[Id], msgspec.Meta(max_length=500)] | None = None
    enabled: bool | None = None
    rate_limit_per_minute: RateLimit | None = None


class IntegrationId(Schema):
    id: Id


class EventTypeInfo(Schema):
    """An event declared in a loaded plugin's contract (``Contract(events=[...])``)."""

    name: str
    plugin_id: str
    description: str
    #: What the payload holds (free text from the declaring plugin), or empty.
    payload: str = ""


class EventTypeList(Schema):
    event_types: list[EventTypeInfo]


# -- the delivery log -----------------------------------------------------------------------------


class Delivery(Schema):
    """One message to one channel (for one user) or one event to one integration."""

    id: str
    target: DeliveryTarget
    target_id: str
    user_id: str | None
    event: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    duration_ms: int | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveriesInput(Schema):
    #: Only the deliveries to this channel (``getDeliveries``) or integration
    #: (``getIntegrationDeliveries``).
    target_id: Id | None = None
    status: DeliveryStatus | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 50
    offset: Offset = 0


class DeliveryPage(Schema):
    deliveries: list[Delivery]
    total: int


# -- the contract ---------------------------------------------------------------------------------

contract = Contract(
    PLUGIN_ID,
    rules=[channel_manage, integration_manage, subscription_manage, inbox],
    procedures=[
        # channels (administrators)
        query(
            "getChannels",
            output=ChannelList,
            rules=[channel_manage],
            description="Every channel, secrets masked.",
        ),
        query(
            "getChannel",
            input=ChannelId,
            output=Channel,
            rules=[channel_manage],
            description="One channel, secrets masked.",
        ),
        mutation(
            "createChannel",
            input=NewChannel,
            output=Channel,
            rules=[channel_manage],
            description="Add a channel: any Apprise URL, or a webhook signed with a secret.",
        ),
        mutation(
            "updateChannel",
            input=ChannelChanges,
            output=Channel,
            rules=[channel_manage],
            description="Change a channel; a masked secret sent back keeps the stored one.",
        ),
        mutation(
            "deleteChannel",
            input=ChannelId,
            output=Deleted,
            rules=[channel_manage],
            description="Delete a channel, its users' choices of it and its delivery log.",
        ),
        mutation(
            "testChannel",
            input=ChannelId,
            output=TestResult,
            rules=[channel_manage],
            description="Send a test message now and report the outcome.",
        ),
        query(
            "getDeliveries",
            input=DeliveriesInput,
            output=DeliveryPage,
            rules=[channel_manage],
            description="The channels' delivery log, newest first.",
        ),
        # the caller's channels, subscriptions and inbox
        query(
            "getMyChannels",
            output=ChannelChoices,
            caller="user",
            rules=[inbox],
            description="The enabled channels, and which of them your notifications go to.",
        ),
        mutation(
            "setMyChannels",
            input=ChannelSelection,
            output=ChannelChoices,
            caller="user",
            rules=[inbox],
            description="Choose the channels your notifications go to.",
        ),
        query(
            "getSubscriptions",
            output=SubscriptionList,
            caller="user",
            rules=[inbox],
            description="Your subscriptions to systems and groups.",
        ),
        mutation(
            "subscribe",
            input=SubscribeInput,
            output=Subscription,
            caller="user",
            rules=[inbox],
            description="Subscribe to a system or group you may read (again: changes the "
            "minimum importance).",
        ),
        mutation(
            "unsubscribe",
            input=SubscriptionId,
            output=Deleted,
            caller="user",
            rules=[inbox],
            description="Remove one of your subscriptions.",
        ),
        query(
            "getNotifications",
            input=NotificationsInput,
            output=NotificationPage,
            caller="user",
            rules=[inbox],
            description="Your inbox, newest first, with the total and the unread count.",
        ),
        query(
            "getUnreadCount",
            output=UnreadCount,
            caller="user",
            rules=[inbox],
            description="How many notifications of your inbox are unread.",
        ),
        mutation(
            "markRead",
            input=MarkReadInput,
            output=Marked,
            caller="user",
            rules=[inbox],
            description="Mark some of your notifications read.",
        ),
        mutation(
            "markAllRead",
            output=Marked,
            caller="user",
            rules=[inbox],
            description="Mark every notification of your inbox read.",
        ),
        # team subscriptions
        query(
            "getTeamSubscriptions",
            input=TeamFilter,
            output=SubscriptionList,
            rules=[subscription_manage],
            description="The subscriptions of teams (one team, or all).",
        ),
        mutation(
            "subscribeTeam",
            input=TeamSubscribeInput,
            output=Subscription,
            rules=[subscription_manage],
            description="Subscribe every member of a team to a system or group.",
        ),
        mutation(
            "unsubscribeTeam",
            input=TeamSubscriptionId,
            output=Deleted,
            rules=[subscription_manage],
            description="Remove a team's subscription.",
        ),
        # integrations
        query(
            "getEventTypes",
            output=EventTypeList,
            rules=[integration_manage],
            description="The events an integration may subscribe to: every event declared in "
            "the contract of a loaded plugin.",
        ),
        query(
            "getIntegrations",
            output=IntegrationList,
            rules=[integration_manage],
            description="Every integration, secrets masked.",
        ),
        mutation(
            "createIntegration",
            input=NewIntegration,
            output=Integration,
            rules=[integration_manage],
            description="Add an outgoing webhook for some event types.",
        ),
        mutation(
            "updateIntegration",
            input=IntegrationChanges,
            output=Integration,
            rules=[integration_manage],
            description="Change an integration.",
        ),
        mutation(
            "deleteIntegration",
            input=IntegrationId,
            output=Deleted,
            rules=[integration_manage],
            description="Delete an integration and its delivery log.",
        ),
        query(
            "getIntegrationDeliveries",
            input=DeliveriesInput,
            output=DeliveryPage,
            rules=[integration_manage],
            description="The integrations' delivery log, newest first.",
        ),
    ],
)

# -- events ---------------------------------------------------------------------------------------

#: ``{"ids": [delivery ids]}``: deliveries were written (emitted after they commit).
#: Internal, so not declared in the contract: integrations never see it.
DELIVERIES_QUEUED = "notification.deliveries.queued"
