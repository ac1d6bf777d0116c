"""Checkstack identity and access: API keys (external applications), users and sessions, roles,
teams and resource-level grants (SPEC §5). It implements the core's auth hooks."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Context, Plugin

from . import hooks
from .contract import AUTH_ACCESS, AccessService, contract
from .handlers import handlers
from .models import MODELS

plugin = Plugin(
    id="auth",
    name="Authentication and access",
    description="API keys, users and sessions, roles, teams and resource-level access.",
    contract=contract,
    handlers=handlers,
    models=MODELS,
    migrations=Path(__file__).parent / "migrations",
    hooks=hooks,
)


@plugin.on_startup
async def sync_rules(ctx: Context) -> None:
    """Default rules into ``users``, public rules into ``anonymous``; drop uninstalled ones."""
    from .service import sync_rules

    await sync_rules(ctx)


@plugin.on_shutdown
async def finish_writes(ctx: Context) -> None:
    """Let pending ``lastUsedAt`` writes finish before the database closes."""
    from .backend import DatabaseAuthBackend

    if isinstance(ctx.host.auth, DatabaseAuthBackend):
        await ctx.host.auth.flush()


@plugin.provide(AUTH_ACCESS)
def access_service(ctx: Context) -> AccessService:
    from .service import AccessServiceImpl

    return AccessServiceImpl()


__all__ = ["AUTH_ACCESS", "plugin"]
