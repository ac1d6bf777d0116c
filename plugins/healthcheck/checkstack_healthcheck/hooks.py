"""The healthcheck plugin's implementations of the core's hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from checkstack_core import hookimpl

if TYPE_CHECKING:
    from checkstack_core.ui import UiRegistrar


@hookimpl
def checkstack_register_ui(ui: UiRegistrar) -> None:
    """Health-check pages, each system's health history, and a health panel on its page."""
    from .ui import register

    register(ui)
