"""The catalog plugin's implementations of the core's hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from checkstack_core import hookimpl

if TYPE_CHECKING:
    from checkstack_core.ui import UiRegistrar


@hookimpl
def checkstack_register_ui(ui: UiRegistrar) -> None:
    """The status page's systems by group, and a page per system."""
    from .ui import register

    register(ui)
