"""The maintenance plugin's part of the web UI: maintenance in progress and upcoming, with
timelines, near the top of the public status page; finished maintenance further down; entries
of the status feed and a panel on each system's page (SPEC §11, docs/ui.md). Everything is read
through this plugin's procedures as the visitor."""

from __future__ import annotations

from datetime import UTC, datetime
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
MANAGE = "/maintenance/manage"
PAGE_SIZE = 20
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
    ui.page(MANAGE, manage_page)
    ui.page(MANAGE + "/{id:str}", window_page)
    ui.page(MANAGE + "/{id:str}/delete", delete_page)
    ui.page(MANAGE + "/{id:str}/cancel", cancel_page)
    ui.nav("Maintenance", MANAGE, order=310, rules=["maintenance.maintenance.manage"])


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


# -- the admin pages ---------------------------------------------------------------------------


def utc_time(value: str) -> str:
    """A ``datetime-local`` field's value (``2026-12-02T10:00``), read as UTC, in ISO 8601;
    anything else is passed on for the procedure's validation to name."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


async def manage_page(view: View) -> Response[Any]:
    """Every window, newest start first, a page at a time; Schedule Maintenance."""
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values: dict[str, Any] = {
            "title": form["title"],
            "startAt": utc_time(form["startAt"]),
            "endAt": utc_time(form["endAt"]),
            "systemIds": form.all("systemId"),
            "description": form["description"] or None,
            "suppressNotifications": form["suppressNotifications"] == "on",
        }
        try:
            created = await view.call("maintenance", "scheduleWindow", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error), values=values)
            status = error.status
        else:
            return view.redirect(f"{MANAGE}/{created['id']}")
    offset = offset_of(view.query, PAGE_SIZE)
    page = await view.call("maintenance", "getWindows", {"limit": PAGE_SIZE, "offset": offset})
    return await view.render(
        "maintenance/manage.html",
        title="Maintenance",
        windows=page["windows"],
        total=page["total"],
        offset=offset,
        limit=PAGE_SIZE,
        names=await system_names(view),
        labels=LABELS,
        status=status,
        **context,
    )


async def window_page(view: View) -> Response[Any]:
    """One window with its timeline: post an update, edit, complete or cancel it."""
    window_id = view.params["id"]
    context: dict[str, Any] = {}
    status = 200
    edited: dict[str, Any] | None = None
    if view.is_post:
        form = await view.form()
        action = form["action"]
        try:
            if action == "edit":
                edited = {
                    "title": form["title"],
                    "startAt": utc_time(form["startAt"]),
                    "endAt": utc_time(form["endAt"]),
                    "systemIds": form.all("systemId"),
                    "description": form["description"] or None,
                    "suppressNotifications": form["suppressNotifications"] == "on",
                }
                await view.call("maintenance", "updateWindow", {"id": window_id, **edited})
            elif action == "complete":
                await view.call("maintenance", "completeWindow", {"id": window_id})
            else:
                await view.call(
                    "maintenance", "addUpdate", {"id": window_id, "message": form["message"]}
                )
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(
                error=error, errors=field_errors(error), message=form["message"], failed=action
            )
            status = error.status
        else:
            return view.redirect(f"{MANAGE}/{window_id}")
    window = await view.call("maintenance", "getWindow", {"id": window_id})
    values = {
        **window,
        "startAt": window["startAt"].isoformat(),
        "endAt": window["endAt"].isoformat(),
        **(edited or {}),
    }
    return await view.render(
        "maintenance/window.html",
        title=window["title"],
        window=window,
        values=values,
        names=await system_names(view),
        labels=LABELS,
        status=status,
        **context,
    )


async def cancel_page(view: View) -> Response[Any]:
    """Cancelling cannot be undone (a cancelled window stays cancelled): ask first."""
    window_id = view.params["id"]
    if view.is_post:
        await view.call("maintenance", "cancelWindow", {"id": window_id})
        return view.redirect(f"{MANAGE}/{window_id}")
    window = await view.call("maintenance", "getWindow", {"id": window_id})
    return await view.render(
        "core/confirm.html",
        title=f"Cancel {window['title']}",
        question=f"Cancel the maintenance “{window['title']}”?",
        consequence="It ends now and is shown as cancelled. A cancelled window cannot be resumed.",
        action=f"{MANAGE}/{window_id}/cancel",
        confirm_label="Cancel maintenance",
        danger=True,
        cancel=f"{MANAGE}/{window_id}",
    )


async def delete_page(view: View) -> Response[Any]:
    window_id = view.params["id"]
    if view.is_post:
        await view.call("maintenance", "deleteWindow", {"id": window_id})
        return view.redirect(MANAGE)
    window = await view.call("maintenance", "getWindow", {"id": window_id})
    return await view.render(
        "core/confirm.html",
        title=f"Delete {window['title']}",
        question=f"Delete the maintenance “{window['title']}”?",
        consequence="It disappears from the status page with its timeline. This cannot be undone.",
        action=f"{MANAGE}/{window_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=f"{MANAGE}/{window_id}",
    )
