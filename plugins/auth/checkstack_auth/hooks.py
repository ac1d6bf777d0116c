"""The auth plugin's implementations of the core's hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from checkstack_core import hookimpl

if TYPE_CHECKING:
    import click

    from checkstack_core.host import Host
    from checkstack_core.ui import UiRegistrar

    from .backend import DatabaseAuthBackend


@hookimpl
def checkstack_auth_backend(host: Host) -> DatabaseAuthBackend:
    """API keys and session cookies, verified against this plugin's tables."""
    from .backend import DatabaseAuthBackend

    return DatabaseAuthBackend(host)


@hookimpl
def checkstack_register_commands(cli: click.Group) -> None:
    """``checkstack admin ...``, ``checkstack apps ...`` and ``checkstack roles ...``."""
    from .cli import register

    register(cli)


@hookimpl
def checkstack_register_ui(ui: UiRegistrar) -> None:
    """Onboarding, sign-in and Authentication Settings (Users, Roles, Applications, Teams)."""
    from .ui import register

    register(ui)
