"""The healthcheck plugin's part of the web UI (SPEC §11, docs/ui.md): the health checks (a page
at a time), creating and editing one with a form generated from its strategy's JSON schema,
assigning it to systems, pausing, running and deleting it; each system's history with a latency
chart, availability and 90-day bars; and a health panel on each system's page.

Everything is read and written through this plugin's procedures as the signed-in person; the
``principal.holds`` tests below only decide which buttons to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkstack_catalog.ui import system_names

from checkstack_core.db import utcnow
from checkstack_core.errors import RpcError
from checkstack_core.ui import field_errors, offset_of
from checkstack_core.ui.charts import Series, line_chart, percent_text
from checkstack_core.ui.charts import uptime as draw_uptime
from checkstack_core.ui.schema_form import MASK, Field, form_fields, read_form

from .contract import DAILY_DAYS, MANAGE

if TYPE_CHECKING:
    from litestar import Response
    from markupsafe import Markup

    from checkstack_core.ui import UiRegistrar
    from checkstack_core.ui.view import View

TEMPLATES = Path(__file__).parent / "templates"
LIST = "/healthchecks"
PAGE_SIZE = 50
#: Runs per page of a system's history (and points of its latency chart).
RUNS_PAGE = 50
#: Runs listed on a check's page.
RECENT_RUNS = 10
LABELS = {
    "healthy": "Operational",
    "degraded": "Degraded",
    "unhealthy": "Down",
    "unknown": "Unknown",
}
WINDOWS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


def register(ui: UiRegistrar) -> None:
    ui.templates("healthcheck", TEMPLATES)
    ui.page(LIST, list_page, methods=("GET",))
    ui.page(LIST + "/new", create_page)
    ui.page(LIST + "/{id:str}", check_page)
    ui.page(LIST + "/{id:str}/delete", delete_page)
    ui.page(LIST + "/{id:str}/unassign/{system:str}", unassign_page)
    ui.page("/systems/{id:str}/health", history_page, methods=("GET",))
    ui.system_panel("Health", system_panel, order=10)
    ui.nav(
        "Health checks",
        LIST,
        order=250,
        rules=["healthcheck.healthcheck.read", "healthcheck.healthcheck.manage"],
    )


# -- helpers ---------------------------------------------------------------------------------------


async def strategies(view: View) -> dict[str, dict[str, Any]]:
    """The installed strategies by id (one call per request)."""

    async def load() -> dict[str, dict[str, Any]]:
        answer = await view.call("healthcheck", "getStrategies")
        return {s["id"]: s for s in answer["strategies"]}

    return dict(await view.once("healthcheck.strategies", load))


def _secret_fields(fields: list[Field]) -> dict[str, Field]:
    found: dict[str, Field] = {}
    for item in fields:
        if item.kind in ("password", "secret_pairs"):
            found[item.name] = item
        found.update(_secret_fields(item.children))
    return found


def config_fields(
    schema: Mapping[str, Any],
    typed: Mapping[str, Any] | None,
    stored: Mapping[str, Any] | None,
) -> list[Field]:
    """The config form: what was typed (after a refused post) or what is stored, but secret
    fields only ever as stored (masked): a typed secret is never sent back to the browser, and
    a mask shown stands for the stored value, which the update keeps."""
    fields = form_fields(schema, typed if typed is not None else stored)
    if typed is not None:
        kept = _secret_fields(form_fields(schema, stored or {}))
        for name, item in _secret_fields(fields).items():
            if name in kept:
                item.value = kept[name].value
            else:
                item.value = [] if item.kind == "secret_pairs" else ""
    return fields


def _number(text: str, integer: bool) -> Any:
    """A number from a form field, or the text itself for validation to name."""
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text


def check_values(form: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """``createHealthCheck``/``updateHealthCheck`` fields from the check form."""
    return {
        "name": form["name"],
        "intervalSeconds": _number(form["intervalSeconds"] or "60", True),
        "timeoutSeconds": _number(form["timeoutSeconds"] or "10", False),
        "config": read_form(schema, form),
    }


def _figures(days: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(d["day"]): d for d in days}


async def uptime(view: View, system_id: str) -> dict[str, Any]:
    """The 90-day bars of one system, its percent, and the days (newest first) for a table."""
    answer = await view.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [system_id], "days": DAILY_DAYS}
    )
    days = list((answer.get("systems") or {}).get(system_id, []))
    drawn = draw_uptime(_figures(days), today=utcnow().date(), days=DAILY_DAYS)
    return {
        "bars": drawn.bars if days else None,
        "percent": drawn.percent_text,
        "days": list(reversed(days)),
        "length": DAILY_DAYS,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else percent_text(value)


def _names(fields: list[Field]) -> set[str]:
    found = {"name", "intervalSeconds", "timeoutSeconds", "strategyId"}
    for item in fields:
        found.add(item.name)
        found |= _names(item.children)
    return found


def errors_for(error: RpcError, fields: list[Field]) -> dict[str, Any]:
    """The page context of a refused form: the error, and its messages keyed by the field they
    concern (``config.expectedStatusCodes.0`` lands on ``config.expectedStatusCodes``)."""
    known = _names(fields)
    errors: dict[str, str] = {}
    for key, message in field_errors(error, full_path=True).items():
        name = key
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        errors.setdefault(name if name in known else key, message)
    return {"error": error, "errors": errors}


# -- the list ----------------------------------------------------------------------------------


async def list_page(view: View) -> Response[Any]:
    """Every health check by name, a page at a time."""
    checks = (await view.call("healthcheck", "getHealthChecks", {}))["healthChecks"]
    offset = offset_of(view.query, PAGE_SIZE)
    principal = await view.principal()
    return await view.render(
        "healthcheck/list.html",
        title="Health checks",
        checks=checks[offset : offset + PAGE_SIZE],
        total=len(checks),
        offset=offset,
        limit=PAGE_SIZE,
        strategies=await strategies(view),
        names=await system_names(view),
        labels=LABELS,
        can_manage=principal.holds(MANAGE),
    )


# -- create --------------------------------------------------------------------------------------


async def create_page(view: View) -> Response[Any]:
    """Pick a strategy, then fill in the form its config schema generates."""
    known = await strategies(view)
    form = await view.form() if view.is_post else None
    strategy_id = (form["strategyId"] if form is not None else None) or view.query.get(
        "strategy", ""
    )
    strategy = known.get(strategy_id)
    if strategy is None:
        return await view.render(
            "healthcheck/pick.html", title="Create Health Check", strategies=list(known.values())
        )
    schema = strategy["configSchema"]
    context: dict[str, Any] = {}
    status = 200
    values: dict[str, Any] = {"name": "", "intervalSeconds": 60, "timeoutSeconds": 10}
    typed: dict[str, Any] | None = None
    if form is not None:
        values = check_values(form, schema)
        typed = values["config"]
        try:
            created = await view.call(
                "healthcheck",
                "createHealthCheck",
                {**values, "strategyId": strategy_id, "paused": form.get("paused") == "on"},
            )
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(errors_for(error, form_fields(schema)))
            status = error.status
        else:
            return view.redirect(f"{LIST}/{created['id']}")
    return await view.render(
        "healthcheck/new.html",
        title=f"Create {strategy['displayName']} Health Check",
        strategy=strategy,
        values=values,
        fields=config_fields(schema, typed, None),
        status=status,
        **context,
    )


# -- one check -----------------------------------------------------------------------------------


async def _act(view: View, check: dict[str, Any], form: Any) -> str | None:
    """Run the posted action; the page to go to afterwards (``None``: show this one)."""
    check_id = check["id"]
    action = form["action"]
    if action == "update":
        strategy = (await strategies(view)).get(check["strategyId"])
        if strategy is None:
            raise RpcError(f"Unknown strategy: {check['strategyId']}", code="BAD_REQUEST")
        values = check_values(form, strategy["configSchema"])
        await view.call("healthcheck", "updateHealthCheck", {"id": check_id, **values})
        return f"{LIST}/{check_id}"
    if action in ("pause", "resume"):
        await view.call("healthcheck", f"{action}HealthCheck", {"id": check_id})
        return f"{LIST}/{check_id}"
    if action == "runNow":
        system_id = form["systemId"] or None
        run = await view.call("healthcheck", "runNow", {"id": check_id, "systemId": system_id})
        return f"{LIST}/{check_id}?ran={run['id']}#runs"
    if action in ("assign", "enable", "disable"):
        current = next((a for a in check["assignments"] if a["systemId"] == form["systemId"]), None)
        body: dict[str, Any] = {
            "id": check_id,
            "systemId": form["systemId"],
            "enabled": action != "disable" and (action != "assign" or "enabled" in form),
        }
        if current is not None:  # keep its thresholds
            body["thresholds"] = current["thresholds"]
        await view.call("healthcheck", "assignHealthCheck", body)
        return f"{LIST}/{check_id}#systems"
    raise RpcError(f"Unknown action: {action}", code="BAD_REQUEST")


async def check_page(view: View) -> Response[Any]:
    """One check: its runs, its systems, run now, pause/resume, edit; delete on its own
    confirmation page."""
    check_id = view.params["id"]
    check = await view.call("healthcheck", "getHealthCheck", {"id": check_id})
    known = await strategies(view)
    strategy = known.get(check["strategyId"])
    context: dict[str, Any] = {}
    status = 200
    typed: dict[str, Any] | None = None
    values = check
    if view.is_post:
        form = await view.form()
        try:
            target = await _act(view, check, form)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            schema = strategy["configSchema"] if strategy is not None else {}
            context.update(errors_for(error, form_fields(schema)), failed=form["action"])
            status = error.status
            if form["action"] == "update" and strategy is not None:
                values = {**check, **check_values(form, schema)}
                typed = values["config"]
        else:
            if target is not None:
                return view.redirect(target)
    runs = await view.call("healthcheck", "getHistory", {"checkId": check_id, "limit": RECENT_RUNS})
    names = await system_names(view)
    assigned = {a["systemId"] for a in check["assignments"]}
    principal = await view.principal()
    ran = view.query.get("ran", "")
    return await view.render(
        "healthcheck/check.html",
        title=check["name"],
        check=check,
        values=values,
        strategy=strategy,
        fields=config_fields(strategy["configSchema"], typed, check["config"]) if strategy else [],
        runs=runs["runs"],
        ran=int(ran) if ran.isdigit() else None,
        names=names,
        unassigned={k: v for k, v in names.items() if k not in assigned},
        labels=LABELS,
        can_manage=principal.holds(MANAGE),
        status=status,
        mask=MASK,
        **context,
    )


async def unassign_page(view: View) -> Response[Any]:
    """Unassigning drops the system's thresholds and its health from this check: ask first."""
    check_id, system_id = view.params["id"], view.params["system"]
    if view.is_post:
        await view.call(
            "healthcheck", "unassignHealthCheck", {"id": check_id, "systemId": system_id}
        )
        return view.redirect(f"{LIST}/{check_id}#systems")
    check = await view.call("healthcheck", "getHealthCheck", {"id": check_id})
    system = (await system_names(view)).get(system_id, system_id)
    return await view.render(
        "core/confirm.html",
        title=f"Unassign {check['name']}",
        question=f"Stop running “{check['name']}” for {system}?",
        consequence="Its thresholds for this system go, and the check no longer counts for the "
        "system's health. Past runs stay in the history.",
        action=f"{LIST}/{check_id}/unassign/{system_id}",
        confirm_label="Unassign",
        danger=True,
        cancel=f"{LIST}/{check_id}#systems",
    )


async def delete_page(view: View) -> Response[Any]:
    check_id = view.params["id"]
    if view.is_post:
        await view.call("healthcheck", "deleteHealthCheck", {"id": check_id})
        return view.redirect(LIST)
    check = await view.call("healthcheck", "getHealthCheck", {"id": check_id})
    return await view.render(
        "core/confirm.html",
        title=f"Delete {check['name']}",
        question=f"Delete the health check “{check['name']}”?",
        consequence="It stops running, and its assignments, runs and availability figures are "
        "deleted. This cannot be undone.",
        action=f"{LIST}/{check_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=f"{LIST}/{check_id}",
    )


# -- a system's health ---------------------------------------------------------------------------


def latency(runs: list[dict[str, Any]], checks: Mapping[str, str]) -> Markup:
    """The latency chart of ``runs``, one line per check."""
    by_check: dict[str, Series] = {}
    for run in runs:
        series = by_check.setdefault(
            run["checkId"], Series(checks.get(run["checkId"], run["checkId"]))
        )
        timestamp: datetime = run["timestamp"]
        series.points.append((timestamp, run["latencyMs"], run["status"] == "unhealthy"))
    return line_chart(list(by_check.values()), name="Latency")


async def history_page(view: View) -> Response[Any]:
    """A system's checks, availability, 90-day bars, latency chart and runs (keyset pages)."""
    system_id = view.params["id"]
    system = await view.call("catalog", "getSystem", {"id": system_id})
    both = await view.batch(
        "healthcheck",
        {
            "getSystemHealth": {"systemId": system_id},
            "getAvailability": {"systemId": system_id},
        },
    )
    health = both["getSystemHealth"]
    checks = {c["checkId"]: c["checkName"] for c in health["checks"]}
    check_id = view.query.get("check") or None
    if check_id not in checks:
        check_id = None
    query: dict[str, Any] = {"systemId": system_id, "limit": RUNS_PAGE}
    if check_id:
        query["checkId"] = check_id
    cursor = view.query.get("cursor", "")
    if cursor.isdigit():
        query["cursor"] = cursor
    page = await view.call("healthcheck", "getHistory", query)
    return await view.render(
        "healthcheck/history.html",
        title=f"{system['name']}: health",
        system=system,
        health=health,
        windows=[
            (WINDOWS[k], _pct(v["percent"]), v["runs"])
            for k, v in both["getAvailability"]["windows"].items()
            if k in WINDOWS
        ],
        uptime=await uptime(view, system_id),
        chart=latency(page["runs"], checks),
        runs=page["runs"],
        total=page["total"],
        next_cursor=page["nextCursor"],
        first_page=not cursor,
        checks=checks,
        check_id=check_id,
        labels=LABELS,
    )


async def system_panel(view: View, system: dict[str, Any]) -> Markup | None:
    """Health on a system's page: its checks' statuses, availability and 90-day bars."""
    if not view.offers("healthcheck", "getSystemHealth"):
        return None
    both = await view.batch(
        "healthcheck",
        {
            "getSystemHealth": {"systemId": system["id"]},
            "getAvailability": {"systemId": system["id"]},
        },
    )
    health = both["getSystemHealth"]
    if not health["checks"]:
        return None
    return view.server.render_fragment(
        "healthcheck/panel.html",
        system=system,
        health=health,
        windows=[
            (WINDOWS[k], _pct(v["percent"]), v["runs"])
            for k, v in both["getAvailability"]["windows"].items()
            if k in WINDOWS
        ],
        uptime=await uptime(view, system["id"]),
        labels=LABELS,
    )
