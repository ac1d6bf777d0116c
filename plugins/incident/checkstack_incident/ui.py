"""The incident plugin's part of the web UI: open incidents with their timelines at the top of
the public status page, the recently resolved ones further down, entries of the status feed and
a panel on each system's page (SPEC §11, docs/ui.md). Everything is read through this plugin's
procedures as the visitor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkstack_catalog.ui import system_names

from checkstack_core.errors import RpcError
from checkstack_core.ui import FeedEntry, field_errors, offset_of

if TYPE_CHECKING:
    from litestar import Response
    from markupsafe import Markup

    from checkstack_core.ui import UiRegistrar
    from checkstack_core.ui.view import View

TEMPLATES = Path(__file__).parent / "templates"
MANAGE = "/incidents/manage"
PAGE_SIZE = 20
SEVERITIES = ("minor", "major", "critical")
OPEN_STATUSES = ("investigating", "identified", "monitoring")
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
    ui.page(MANAGE, manage_page)
    ui.page(MANAGE + "/{id:str}", incident_page)
    ui.page(MANAGE + "/{id:str}/delete", delete_page)
    ui.nav("Incidents", MANAGE, order=300, rules=["incident.incident.manage"])


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


# -- the admin pages ---------------------------------------------------------------------------


async def manage_page(view: View) -> Response[Any]:
    """Every incident, newest first, a page at a time; Create Incident."""
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values: dict[str, Any] = {
            "title": form["title"],
            "severity": form["severity"],
            "status": form["status"] or "investigating",
            "systemIds": form.all("systemId"),
            "description": form["description"] or None,
            "message": form["message"] or None,
        }
        try:
            created = await view.call("incident", "createIncident", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error), values=values)
            status = error.status
        else:
            return view.redirect(f"{MANAGE}/{created['id']}")
    offset = offset_of(view.query, PAGE_SIZE)
    page = await view.call(
        "incident",
        "getIncidents",
        {"includeResolved": True, "limit": PAGE_SIZE, "offset": offset},
    )
    names = await system_names(view)
    return await view.render(
        "incident/manage.html",
        title="Incidents",
        incidents=page["incidents"],
        total=page["total"],
        offset=offset,
        limit=PAGE_SIZE,
        names=names,
        labels=LABELS,
        severities=SEVERITIES,
        open_statuses=OPEN_STATUSES,
        status=status,
        **context,
    )


async def incident_page(view: View) -> Response[Any]:
    """One incident with its timeline: post an update (optionally changing the status; each is
    a timeline entry), resolve it, or edit its title, severity, systems and description."""
    incident_id = view.params["id"]
    context: dict[str, Any] = {}
    status = 200
    edited: dict[str, Any] | None = None
    if view.is_post:
        form = await view.form()
        try:
            if form["action"] == "edit":
                edited = {
                    "title": form["title"],
                    "severity": form["severity"],
                    "systemIds": form.all("systemId"),
                    "description": form["description"] or None,
                }
                await view.call("incident", "updateIncident", {"id": incident_id, **edited})
            elif form["action"] == "resolve":
                await view.call(
                    "incident",
                    "resolveIncident",
                    {"id": incident_id, "message": form["message"] or None},
                )
            else:
                await view.call(
                    "incident",
                    "addUpdate",
                    {
                        "id": incident_id,
                        "message": form["message"],
                        "status": form["status"] or None,
                    },
                )
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(
                error=error,
                errors=field_errors(error),
                message=form["message"],
                failed=form["action"],
            )
            status = error.status
        else:
            return view.redirect(f"{MANAGE}/{incident_id}")
    incident = await view.call("incident", "getIncident", {"id": incident_id})
    return await view.render(
        "incident/incident.html",
        title=incident["title"],
        incident=incident,
        values={**incident, **(edited or {})},
        severities=SEVERITIES,
        names=await system_names(view),
        labels=LABELS,
        statuses=(*OPEN_STATUSES, "resolved"),
        status=status,
        **context,
    )


async def delete_page(view: View) -> Response[Any]:
    incident_id = view.params["id"]
    if view.is_post:
        await view.call("incident", "deleteIncident", {"id": incident_id})
        return view.redirect(MANAGE)
    incident = await view.call("incident", "getIncident", {"id": incident_id, "timelineLimit": 1})
    return await view.render(
        "core/confirm.html",
        title=f"Delete {incident['title']}",
        question=f"Delete the incident “{incident['title']}”?",
        consequence="It disappears from the status page with its whole timeline. "
        "This cannot be undone.",
        action=f"{MANAGE}/{incident_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=f"{MANAGE}/{incident_id}",
    )
