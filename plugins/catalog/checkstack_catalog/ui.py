"""The catalog's part of the web UI: the systems of the public status page, by group, with their
health when a health-check plugin answers; and a page per system with the panels other plugins
add (SPEC §11, docs/ui.md).

Health is optional: when an active ``healthcheck`` plugin offers ``getBulkSystemHealth``, the
systems' statuses come from it (as the visitor, so its rules apply), and when it offers
``getDailyAvailability``, each system with history gets its 90-day uptime bars; otherwise, or
when it refuses or fails, no health is shown.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkstack_core.db import utcnow
from checkstack_core.errors import RpcError
from checkstack_core.ui import field_errors, offset_of
from checkstack_core.ui.charts import uptime as draw_uptime

if TYPE_CHECKING:
    from litestar import Response
    from markupsafe import Markup

    from checkstack_core.ui import UiRegistrar
    from checkstack_core.ui.view import View

logger = logging.getLogger("checkstack.plugins.catalog")

TEMPLATES = Path(__file__).parent / "templates"
MANAGE = "/catalog/manage"
PAGE_SIZE = 50
#: ``getBulkSystemHealth`` takes at most this many ids per call.
HEALTH_CHUNK = 500
#: Worst first: a group or the whole page shows its worst system's status.
SEVERITY = {"unhealthy": 3, "degraded": 2, "unknown": 1, "healthy": 0}
LABELS = {
    "healthy": "Operational",
    "degraded": "Degraded",
    "unhealthy": "Down",
    "unknown": "Unknown",
}


def register(ui: UiRegistrar) -> None:
    ui.templates("catalog", TEMPLATES)
    ui.status_section(systems_section, order=30)
    ui.page("/systems/{id:str}", system_page, methods=("GET",))
    ui.page(MANAGE, manage_page)
    ui.page(MANAGE + "/systems/{id:str}", edit_system_page)
    ui.page(MANAGE + "/groups/{id:str}", edit_group_page)
    ui.page(MANAGE + "/systems/{id:str}/delete", delete_system_page)
    ui.page(MANAGE + "/groups/{id:str}/delete", delete_group_page)
    ui.nav("Catalog", MANAGE, order=200, rules=["catalog.catalog.manage"])


async def systems(view: View) -> list[dict[str, Any]]:
    """The systems this caller may read (one call per page, shared by its sections)."""

    async def load() -> list[dict[str, Any]]:
        return list((await view.call("catalog", "getSystems"))["systems"])

    return list(await view.once("catalog.systems", load))


async def system_names(view: View) -> dict[str, str]:
    """Names of the systems this caller may read, by id, for other plugins' sections (ids the
    caller may not read are absent: show nothing for them). Empty without the catalog."""
    if not view.offers("catalog", "getSystems"):
        return {}
    try:
        return {s["id"]: s["name"] for s in await systems(view)}
    except RpcError:
        return {}


async def health(view: View, system_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """``{systemId: {"status": ...}}`` from the healthcheck plugin, or ``None`` without it."""
    if not view.offers("healthcheck", "getBulkSystemHealth"):
        return None
    found: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, len(system_ids), HEALTH_CHUNK):
            chunk = system_ids[start : start + HEALTH_CHUNK]
            answer = await view.call("healthcheck", "getBulkSystemHealth", {"systemIds": chunk})
            for system_id, status in (answer.get("statuses") or {}).items():
                if isinstance(status, dict) and status.get("status") in SEVERITY:
                    found[system_id] = status
    except RpcError as error:
        if error.code not in ("UNAUTHORIZED", "FORBIDDEN", "SERVICE_UNAVAILABLE"):
            logger.warning("Health for the status page failed: %s %s", error.code, error.message)
        return None
    return found


#: Days of the uptime bars.
UPTIME_DAYS = 90
#: How long this process reuses the figures of past days (today's are asked every time): between
#: this and twice this, drawn per system, so the systems of a page expire a few at a time.
PAST_DAYS_SECONDS = 300.0


@dataclass
class _Past:
    """Figures of a system's past days (before ``today``), kept until ``until`` (monotonic)."""

    today: date
    until: float
    figures: dict[str, dict[str, Any]]


#: Past days change only when a check is deleted or history expires: each process keeps them
#: for a few minutes, so a status page reads 90 days of a system once in a while and only
#: today's figures otherwise. Which systems are shown is still decided by the visitor's call.
_past: dict[str, _Past] = {}


async def _daily(view: View, ids: list[str], days: int) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), HEALTH_CHUNK):
        answer = await view.call(
            "healthcheck",
            "getDailyAvailability",
            {"systemIds": ids[start : start + HEALTH_CHUNK], "days": days},
        )
        found.update(answer.get("systems") or {})
    return found


async def uptime(view: View, system_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{systemId: {"bars": Markup, "percent": str}}`` for the systems with runs in the last
    90 days, from the healthcheck plugin's daily aggregates (empty without it)."""
    if not view.offers("healthcheck", "getDailyAvailability") or not system_ids:
        return {}
    today = utcnow().date()
    now = time.monotonic()
    fresh = {
        i
        for i in system_ids
        if (p := _past.get(i)) is not None and p.today == today and now < p.until
    }
    stale = [i for i in system_ids if i not in fresh]
    try:
        # Today for every system (this call also decides which ones the visitor may see)...
        current = await _daily(view, system_ids, 1)
        # ...and the past 89 days of those not kept.
        history = await _daily(view, [i for i in stale if i in current], UPTIME_DAYS)
    except RpcError as error:
        if error.code not in ("UNAUTHORIZED", "FORBIDDEN", "SERVICE_UNAVAILABLE"):
            logger.warning("Uptime for the status page failed: %s %s", error.code, error.message)
        return {}
    if len(_past) > 20_000:
        _past.clear()
    key = today.isoformat()
    for system_id, days in history.items():
        figures = {str(d["day"]): d for d in days if str(d["day"]) != key}
        until = now + PAST_DAYS_SECONDS * (1 + random.random())
        _past[system_id] = _Past(today, until, figures)
    found: dict[str, dict[str, Any]] = {}
    for system_id, days in current.items():
        past = _past.get(system_id)
        figures = dict(past.figures) if past is not None else {}
        figures.update((str(d["day"]), d) for d in days)
        if not figures:
            continue
        drawn = draw_uptime(figures, today=today, days=UPTIME_DAYS)
        found[system_id] = {"bars": drawn.bars, "percent": drawn.percent_text}
    return found


def worst(statuses: list[str]) -> str | None:
    return max(statuses, key=lambda s: SEVERITY[s]) if statuses else None


async def systems_section(view: View) -> Markup | None:
    found = await systems(view)
    groups = (await view.call("catalog", "getGroups"))["groups"]
    by_id = {s["id"]: s for s in found}
    statuses = await health(view, list(by_id))
    grouped: list[dict[str, Any]] = []
    placed: set[str] = set()
    for group in groups:
        members = [by_id[i] for i in group["systemIds"] if i in by_id]
        if members:
            placed.update(s["id"] for s in members)
            grouped.append({"name": group["name"], "id": group["id"], "systems": members})
    others = [s for s in found if s["id"] not in placed]
    if others:
        grouped.append(
            {"name": "Other systems" if grouped else "Systems", "id": "other", "systems": others}
        )
    if statuses is not None:
        for group in grouped:
            group["status"] = worst(
                [statuses[s["id"]]["status"] for s in group["systems"] if s["id"] in statuses]
            )
    overall = None
    if statuses is not None and found:
        overall = worst([statuses[s]["status"] for s in by_id if s in statuses]) or "unknown"
    return view.server.render_fragment(
        "catalog/systems.html",
        groups=grouped,
        statuses=statuses,
        uptime=await uptime(view, list(by_id)) if statuses is not None else {},
        uptime_days=UPTIME_DAYS,
        overall=overall,
        labels=LABELS,
    )


async def system_page(view: View) -> Response[Any]:
    system = await view.call("catalog", "getSystem", {"id": view.params["id"]})
    statuses = await health(view, [system["id"]])
    panels = []
    for panel in view.server.registry.panels:
        try:
            html = await panel.render(view, system)
        except RpcError as error:
            if error.code not in ("UNAUTHORIZED", "FORBIDDEN", "SERVICE_UNAVAILABLE"):
                raise
            continue
        if html:
            panels.append({"title": panel.title, "html": html})
    return await view.render(
        "catalog/system.html",
        title=system["name"],
        system=system,
        health=(statuses or {}).get(system["id"]),
        labels=LABELS,
        panels=panels,
    )


# -- the admin page ----------------------------------------------------------------------------

#: Form actions of the catalog page: (procedure, input built from the form).
ACTIONS = {
    "createSystem": lambda f: {"name": f["name"], "description": f["description"] or None},
    "createGroup": lambda f: {"name": f["name"], "description": f["description"] or None},
    "addSystemToGroup": lambda f: {"groupId": f["groupId"], "systemId": f["systemId"]},
    "removeSystemFromGroup": lambda f: {"groupId": f["groupId"], "systemId": f["systemId"]},
}


async def manage_page(view: View) -> Response[Any]:
    """Systems (a page at a time) and groups: create, group, ungroup; delete on their own
    confirmation pages."""
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        action = form["action"]
        build = ACTIONS.get(action)
        if build is None:
            raise RpcError(f"Unknown action: {action}", code="BAD_REQUEST")
        values = build(form)
        try:
            await view.call("catalog", action, values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error), values=values, failed=action)
            status = error.status
        else:
            return view.redirect(MANAGE)
    both = await view.batch("catalog", {"getSystems": None, "getGroups": None})
    found = both["getSystems"]["systems"]
    offset = offset_of(view.query, PAGE_SIZE)
    return await view.render(
        "catalog/manage.html",
        title="Catalog",
        systems=found[offset : offset + PAGE_SIZE],
        all_systems=found,
        names={s["id"]: s["name"] for s in found},
        groups=both["getGroups"]["groups"],
        total=len(found),
        offset=offset,
        limit=PAGE_SIZE,
        status=status,
        **context,
    )


async def _group(view: View, group_id: str) -> dict[str, Any]:
    groups = (await view.call("catalog", "getGroups"))["groups"]
    found = next((g for g in groups if g["id"] == group_id), None)
    if found is None:
        raise RpcError(f"Group not found: {group_id}", code="NOT_FOUND")
    return dict(found)


async def _edit(view: View, kind: str, item: dict[str, Any]) -> Response[Any]:
    """Edit a system's or a group's name and description."""
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values = {
            "id": item["id"],
            "name": form["name"],
            "description": form["description"] or None,
        }
        try:
            await view.call("catalog", f"update{kind.title()}", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error))
            status = error.status
            item = {**item, **values}
        else:
            return view.redirect(MANAGE)
    return await view.render(
        "catalog/edit.html",
        title=f"Edit {item['name']}",
        kind=kind,
        item=item,
        status=status,
        **context,
    )


async def edit_system_page(view: View) -> Response[Any]:
    system = await view.call("catalog", "getSystem", {"id": view.params["id"]})
    return await _edit(view, "system", system)


async def edit_group_page(view: View) -> Response[Any]:
    return await _edit(view, "group", await _group(view, view.params["id"]))


async def _confirm_delete(view: View, kind: str, procedure: str, getter: str) -> Response[Any]:
    item_id = view.params["id"]
    if view.is_post:
        await view.call("catalog", procedure, {"id": item_id})
        return view.redirect(MANAGE)
    if getter == "getSystem":
        item = await view.call("catalog", "getSystem", {"id": item_id})
    else:
        item = await _group(view, item_id)
    return await view.render(
        "core/confirm.html",
        title=f"Delete {item['name']}",
        question=f"Delete the {kind} “{item['name']}”?",
        consequence="It disappears from the status page, with its team grants. "
        "This cannot be undone.",
        action=f"{MANAGE}/{kind}s/{item_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=MANAGE,
    )


async def delete_system_page(view: View) -> Response[Any]:
    return await _confirm_delete(view, "system", "deleteSystem", "getSystem")


async def delete_group_page(view: View) -> Response[Any]:
    return await _confirm_delete(view, "group", "deleteGroup", "getGroups")
