"""The incident plugin's implementations of the core's hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from checkstack_core import hookimpl

if TYPE_CHECKING:
    from checkstack_core.ui import UiRegistrar


@hookimpl
def checkstack_register_ui(ui: UiRegistrar) -> None:
    """Open incidents and the incident history on the status page, feed entries and
    a panel on each system's page."""
    from .ui import register

    register(ui)
