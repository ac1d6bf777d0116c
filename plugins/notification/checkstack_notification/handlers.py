"""Implementations of the notification plugin's procedures (logic in :mod:`.service`)."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import outbox, service
from .contract import (
    Channel,
    ChannelChanges,
    ChannelChoices,
    ChannelId,
    ChannelList,
    ChannelSelection,
    Deleted,
    DeliveriesInput,
    DeliveryPage,
    EventTypeList,
    Integration,
    IntegrationChanges,
    IntegrationId,
    IntegrationList,
    Marked,
    MarkReadInput,
    NewChannel,
    NewIntegration,
    NotificationPage,
    NotificationsInput,
    SubscribeInput,
    Subscription,
    SubscriptionId,
    SubscriptionList,
    TeamFilter,
    TeamSubscribeInput,
    TeamSubscriptionId,
    TestResult,
    UnreadCount,
    contract,
)

handlers = Handlers(contract)


# -- channels -------------------------------------------------------------------------------------


@handlers.implement("getChannels")
async def get_channels(ctx: Context, input: None) -> ChannelList:
    return await service.list_channels(ctx)


@handlers.implement("getChannel")
async def get_channel(ctx: Context, input: ChannelId) -> Channel:
    return await service.get_channel(ctx, input.id)


@handlers.implement("createChannel")
async def create_channel(ctx: Context, input: NewChannel) -> Channel:
    return await service.create_channel(ctx, input)


@handlers.implement("updateChannel")
async def update_channel(ctx: Context, input: ChannelChanges) -> Channel:
    return await service.update_channel(ctx, input)


@handlers.implement("deleteChannel")
async def delete_channel(ctx: Context, input: ChannelId) -> Deleted:
    await service.delete_channel(ctx, input.id)
    return Deleted(id=input.id)


@handlers.implement("testChannel")
async def test_channel(ctx: Context, input: ChannelId) -> TestResult:
    row = await service.channel_row(ctx.session, input.id)
    ok, error, duration = await outbox.test_channel(ctx, row)
    return TestResult(ok=ok, error=error, duration_ms=duration)


@handlers.implement("getDeliveries")
async def get_deliveries(ctx: Context, input: DeliveriesInput) -> DeliveryPage:
    return await service.deliveries(ctx, "channel", input)


# -- the caller's channels, subscriptions and inbox -----------------------------------------------


@handlers.implement("getMyChannels")
async def get_my_channels(ctx: Context, input: None) -> ChannelChoices:
    return await service.my_channels(ctx)


@handlers.implement("setMyChannels")
async def set_my_channels(ctx: Context, input: ChannelSelection) -> ChannelChoices:
    return await service.set_my_channels(ctx, input)


@handlers.implement("getSubscriptions")
async def get_subscriptions(ctx: Context, input: None) -> SubscriptionList:
    return await service.list_subscriptions(ctx, "user", service.caller_id(ctx))


@handlers.implement("subscribe")
async def subscribe(ctx: Context, input: SubscribeInput) -> Subscription:
    return await service.subscribe(ctx, input)


@handlers.implement("unsubscribe")
async def unsubscribe(ctx: Context, input: SubscriptionId) -> Deleted:
    await service.unsubscribe(ctx, input.id, "user")
    return Deleted(id=input.id)


@handlers.implement("getNotifications")
async def get_notifications(ctx: Context, input: NotificationsInput) -> NotificationPage:
    return await service.notifications(ctx, input)


@handlers.implement("getUnreadCount")
async def get_unread_count(ctx: Context, input: None) -> UnreadCount:
    return UnreadCount(count=await service.unread_count(ctx))


@handlers.implement("markRead")
async def mark_read(ctx: Context, input: MarkReadInput) -> Marked:
    return Marked(count=await service.mark_read(ctx, input))


@handlers.implement("markAllRead")
async def mark_all_read(ctx: Context, input: None) -> Marked:
    return Marked(count=await service.mark_read(ctx, None))


# -- team subscriptions ---------------------------------------------------------------------------


@handlers.implement("getTeamSubscriptions")
async def get_team_subscriptions(ctx: Context, input: TeamFilter) -> SubscriptionList:
    return await service.list_subscriptions(ctx, "team", input.team_id)


@handlers.implement("subscribeTeam")
async def subscribe_team(ctx: Context, input: TeamSubscribeInput) -> Subscription:
    return await service.subscribe_team(ctx, input)


@handlers.implement("unsubscribeTeam")
async def unsubscribe_team(ctx: Context, input: TeamSubscriptionId) -> Deleted:
    await service.unsubscribe(ctx, input.subscription_id, "team")
    return Deleted(id=input.subscription_id)


# -- integrations ---------------------------------------------------------------------------------


@handlers.implement("getEventTypes")
async def get_event_types(ctx: Context, input: None) -> EventTypeList:
    return service.event_types(ctx)


@handlers.implement("getIntegrations")
async def get_integrations(ctx: Context, input: None) -> IntegrationList:
    return await service.list_integrations(ctx)


@handlers.implement("createIntegration")
async def create_integration(ctx: Context, input: NewIntegration) -> Integration:
    return await service.create_integration(ctx, input)


@handlers.implement("updateIntegration")
async def update_integration(ctx: Context, input: IntegrationChanges) -> Integration:
    return await service.update_integration(ctx, input)


@handlers.implement("deleteIntegration")
async def delete_integration(ctx: Context, input: IntegrationId) -> Deleted:
    await service.delete_integration(ctx, input.id)
    return Deleted(id=input.id)


@handlers.implement("getIntegrationDeliveries")
async def get_integration_deliveries(ctx: Context, input: DeliveriesInput) -> DeliveryPage:
    return await service.deliveries(ctx, "integration", input)
