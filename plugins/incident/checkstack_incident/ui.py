"""The incident plugin's part of the web UI: open incidents with their timelines at the top of
the public status page, the recently resolved ones further down, entries of the status feed and
a panel on each system's page (SPEC §11, docs/ui.md). Everything is read through this plugin's
procedures as the visitor."""

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
#: Open incidents shown with their whole timeline (the rest are listed without it).
WITH_TIMELINE = 10
#: Resolved incidents in the history section.
HISTORY = 10
LABELS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "minor": "Minor",
    "major": "Major",
    "critical": "Critical",
}


def register(ui: UiRegistrar) -> None:
    ui.templates("incident", TEMPLATES)
    ui.status_section(open_section, order=10)
    ui.status_section(history_section, order=40)
    ui.system_panel("Incidents", system_panel, order=20)
    ui.feed(feed)


async def _with_timelines(view: View, incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    detailed = []
    for index, incident in enumerate(incidents):
        if index < WITH_TIMELINE:
            incident = await view.call("incident", "getIncident", {"id": incident["id"]})
        detailed.append(incident)
    return detailed


async def open_section(view: View) -> Markup | None:
    page = await view.call("incident", "getIncidents", {"limit": 50})
    if not page["incidents"]:
        return None
    return view.server.render_fragment(
        "incident/open.html",
        incidents=await _with_timelines(view, page["incidents"]),
        names=await system_names(view),
        labels=LABELS,
    )


async def history_section(view: View) -> Markup | None:
    page = await view.call("incident", "getIncidents", {"status": "resolved", "limit": HISTORY})
    return view.server.render_fragment(
        "incident/history.html",
        incidents=page["incidents"],
        names=await system_names(view),
        labels=LABELS,
    )


async def system_panel(view: View, system: dict[str, Any]) -> Markup | None:
    page = await view.call(
        "incident",
        "getIncidents",
        {"systemId": system["id"], "includeResolved": True, "limit": 20},
    )
    return view.server.render_fragment(
        "incident/panel.html", incidents=page["incidents"], labels=LABELS
    )


async def feed(view: View) -> list[FeedEntry]:
    page = await view.call("incident", "getIncidents", {"includeResolved": True, "limit": 25})
    return [
        FeedEntry(
            id=f"incident/{incident['id']}",
            title=f"[{LABELS[incident['status']]}] {incident['title']}",
            updated=incident["updatedAt"],
            summary=incident.get("description") or "",
            link=f"/#incident-{incident['id']}",
        )
        for incident in page["incidents"]
    ]
