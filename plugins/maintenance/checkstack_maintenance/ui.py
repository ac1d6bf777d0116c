"""The maintenance plugin's part of the web UI: maintenance in progress and upcoming, with
timelines, near the top of the public status page; finished maintenance further down; entries
of the status feed and a panel on each system's page (SPEC §11, docs/ui.md). Everything is read
through this plugin's procedures as the visitor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkstack_catalog.ui import system_names

from checkstack_core.ui import FeedEntry

if TYPE_CHECKING:
    from markupsafe import Markup

    from checkstack_core.ui import UiRegistrar
    from checkstack_core.ui.view import View

TEMPLATES = Path(__file__).parent / "templates"
#: Active windows shown with their whole timeline.
WITH_TIMELINE = 10
HISTORY = 10
LABELS = {
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "completed": "Completed",
    "cancelled": "Cancelled",
}


def register(ui: UiRegistrar) -> None:
    ui.templates("maintenance", TEMPLATES)
    ui.status_section(active_section, order=20)
    ui.status_section(history_section, order=50)
    ui.system_panel("Maintenance", system_panel, order=30)
    ui.feed(feed)


async def active_section(view: View) -> Markup | None:
    page = await view.call(
        "maintenance", "getWindows", {"status": ["in_progress", "scheduled"], "limit": 50}
    )
    windows = sorted(page["windows"], key=lambda w: (w["status"] != "in_progress", w["startAt"]))
    if not windows:
        return None
    detailed = []
    for index, window in enumerate(windows):
        if index < WITH_TIMELINE:
            window = await view.call("maintenance", "getWindow", {"id": window["id"]})
        detailed.append(window)
    return view.server.render_fragment(
        "maintenance/active.html",
        in_progress=[w for w in detailed if w["status"] == "in_progress"],
        upcoming=[w for w in detailed if w["status"] == "scheduled"],
        names=await system_names(view),
        labels=LABELS,
    )


async def history_section(view: View) -> Markup | None:
    page = await view.call(
        "maintenance", "getWindows", {"status": ["completed", "cancelled"], "limit": HISTORY}
    )
    if not page["windows"]:
        return None
    return view.server.render_fragment(
        "maintenance/history.html", windows=page["windows"], labels=LABELS
    )


async def system_panel(view: View, system: dict[str, Any]) -> Markup | None:
    page = await view.call("maintenance", "getWindows", {"systemId": system["id"], "limit": 20})
    return view.server.render_fragment(
        "maintenance/panel.html", windows=page["windows"], labels=LABELS
    )


async def feed(view: View) -> list[FeedEntry]:
    page = await view.call("maintenance", "getWindows", {"limit": 25})
    return [
        FeedEntry(
            id=f"maintenance/{window['id']}",
            title=f"[Maintenance: {LABELS[window['status']]}] {window['title']}",
            updated=window["updatedAt"],
            summary=window.get("description") or "",
            link=f"/#maintenance-{window['id']}",
        )
        for window in page["windows"]
    ]
