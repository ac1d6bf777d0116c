"""The public status page and its feed, in process, with the first-party plugins: systems by
group, open incidents and maintenance with timelines, history, what guests may not read left
out, refreshes as fragments, and the Atom feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

PASSWORD = "Admin-pass-123"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_auth import plugin as auth
    from checkstack_catalog import plugin as catalog
    from checkstack_incident import plugin as incident
    from checkstack_maintenance import plugin as maintenance

    plugins = [auth, catalog, incident, maintenance]
    if hasattr(request, "param"):  # with a stand-in healthcheck plugin
        plugins.append(stub_healthcheck(HEALTH))
    return plugins


class Admin:
    def __init__(self, http: httpx.AsyncClient, cookie: str) -> None:
        self.http = http
        self.headers = {"Cookie": f"checkstack_session={cookie}"}

    async def call(self, plugin: str, procedure: str, input: Any = None) -> Any:
        response = await self.http.post(
            f"/api/{plugin}/", json={procedure: input or {}}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()[procedure]


@pytest.fixture
async def admin(checkstack_http: httpx.AsyncClient) -> Admin:
    response = await checkstack_http.post(
        "/api/auth/",
        json={"completeOnboarding": {"email": "root@example.com", "password": PASSWORD}},
    )
    cookie = response.cookies["checkstack_session"]
    checkstack_http.cookies.clear()  # the visitor's client stays anonymous
    return Admin(checkstack_http, cookie)


async def test_status_page_as_a_visitor(checkstack_http: httpx.AsyncClient, admin: Admin):
    api = await admin.call("catalog", "createSystem", {"name": "Public API"})
    web = await admin.call("catalog", "createSystem", {"name": "Website"})
    lone = await admin.call("catalog", "createSystem", {"name": "Mail relay"})
    group = await admin.call("catalog", "createGroup", {"name": "Customer facing"})
    for system in (api, web):
        await admin.call(
            "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
        )
    incident = await admin.call(
        "incident",
        "createIncident",
        {
            "title": "Elevated API errors",
            "severity": "major",
            "systemIds": [api["id"]],
            "message": "We are looking into it.",
        },
    )
    await admin.call(
        "incident",
        "addUpdate",
        {"id": incident["id"], "message": "Cause found: a bad deploy.", "status": "identified"},
    )
    now = datetime.now(UTC)
    await admin.call(
        "maintenance",
        "scheduleWindow",
        {
            "title": "Database upgrade",
            "startAt": (now + timedelta(days=1)).isoformat(),
            "endAt": (now + timedelta(days=1, hours=2)).isoformat(),
            "systemIds": [lone["id"]],
        },
    )

    page = await checkstack_http.get("/")
    assert page.status_code == 200
    html = page.text
    # Systems by group, the ungrouped one under "Other systems"; no health without healthcheck.
    systems = html[html.index('id="systems-heading"') :]
    assert "Customer facing" in systems and "Other systems" in systems
    assert (
        systems.index("Public API") < systems.index("Other systems") < systems.index("Mail relay")
    )
    assert 'class="badge healthy"' not in html and "Operational" not in html
    # The open incident with its timeline, newest first; the upcoming maintenance.
    assert "Elevated API errors" in html
    assert html.index("Cause found: a bad deploy.") < html.index("We are looking into it.")
    assert "Identified" in html and "Major" in html
    assert "Database upgrade" in html and "Upcoming" in html
    # Open incidents come first.
    assert html.index("Open incidents") < html.index(">Maintenance<") < html.index(">Systems<")
    # The live fragment is the same content without the page around it.
    live = await checkstack_http.get("/status/live", headers={"HX-Request": "true"})
    assert "Elevated API errors" in live.text and "<html" not in live.text
    # The system page with the incident panel.
    system = await checkstack_http.get(f"/systems/{api['id']}")
    assert system.status_code == 200 and "Elevated API errors" in system.text

    # Resolved: it moves to the history.
    await admin.call("incident", "resolveIncident", {"id": incident["id"], "message": "Fixed."})
    html = (await checkstack_http.get("/")).text
    assert "Open incidents" not in html
    assert "Past incidents" in html and "Elevated API errors" in html

    feed = await checkstack_http.get("/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(feed.content)
    titles = [e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")]
    assert "[Resolved] Elevated API errors" in titles
    assert "[Maintenance: Scheduled] Database upgrade" in titles


async def test_team_only_system_is_not_shown_to_visitors(
    checkstack_http: httpx.AsyncClient, admin: Admin
):
    await admin.call("catalog", "createSystem", {"name": "Status backend"})
    secret = await admin.call("catalog", "createSystem", {"name": "Secret payroll"})
    team = await admin.call("auth", "createTeam", {"name": "payroll"})
    await admin.call(
        "auth",
        "grantTeamAccess",
        {
            "teamId": team["id"],
            "resourceType": "catalog.system",
            "resourceId": secret["id"],
            "level": "read",
        },
    )
    await admin.call(
        "auth",
        "setTeamOnly",
        {"resourceType": "catalog.system", "resourceId": secret["id"], "teamOnly": True},
    )
    html = (await checkstack_http.get("/")).text
    assert "Status backend" in html
    assert "Secret payroll" not in html
    direct = await checkstack_http.get(f"/systems/{secret['id']}")
    assert direct.status_code in (401, 403, 303)
    assert "Secret payroll" not in direct.text


async def test_private_status_page_asks_visitors_to_sign_in(
    checkstack_http: httpx.AsyncClient, admin: Admin
):
    await admin.call("catalog", "createSystem", {"name": "Internal only"})
    roles = await admin.call("auth", "getRoles")
    anonymous = next(r for r in roles["roles"] if r["id"] == "anonymous")
    await admin.call("auth", "updateRole", {"id": "anonymous", "rules": []})
    assert anonymous["rules"]
    page = await checkstack_http.get("/")
    assert page.status_code == 200
    assert "Internal only" not in page.text
    assert "This status page is not public" in page.text


def stub_healthcheck(statuses: dict[str, str]) -> Any:
    """A stand-in for the healthcheck plugin: ``getBulkSystemHealth`` as its contract has it
    (public, rule ``status.read``, ``{"systemIds"}`` → ``{"statuses": {id: {...}}}``)."""
    from checkstack_core import AccessRule, Contract, Handlers, Plugin, Schema, query

    status_read = AccessRule("status", "read", "System health", default=True, public=True)

    class SystemIdsInput(Schema):
        system_ids: list[str]

    class SystemHealth(Schema):
        system_id: str
        status: str

    class BulkSystemHealth(Schema):
        statuses: dict[str, SystemHealth]

    contract = Contract(
        "healthcheck",
        rules=[status_read],
        procedures=[
            query(
                "getBulkSystemHealth",
                input=SystemIdsInput,
                output=BulkSystemHealth,
                caller="public",
                rules=[status_read],
            )
        ],
    )
    handlers = Handlers(contract)

    @handlers.implement("getBulkSystemHealth")
    async def bulk(ctx: Any, value: SystemIdsInput) -> BulkSystemHealth:
        return BulkSystemHealth(
            statuses={
                i: SystemHealth(system_id=i, status=statuses[i])
                for i in value.system_ids
                if i in statuses
            }
        )

    return Plugin(id="healthcheck", name="Health (stub)", contract=contract, handlers=handlers)


HEALTH: dict[str, str] = {}


@pytest.mark.parametrize(
    "checkstack_plugins",
    [pytest.param(None, id="with-healthcheck")],
    indirect=True,
)
async def test_health_from_the_healthcheck_plugin(checkstack_http, admin):
    ok = await admin.call("catalog", "createSystem", {"name": "Edge"})
    slow = await admin.call("catalog", "createSystem", {"name": "Search"})
    HEALTH.update({ok["id"]: "healthy", slow["id"]: "degraded"})
    html = (await checkstack_http.get("/")).text
    assert "Some systems are degraded" in html
    edge = html[html.index(f'data-system-id="{ok["id"]}"') :]
    assert edge.index('class="badge healthy">Operational') < edge.index("</li>")
    search = html[html.index(f'data-system-id="{slow["id"]}"') :]
    assert search.index('class="badge degraded">Degraded') < search.index("</li>")
    page = await checkstack_http.get(f"/systems/{slow['id']}")
    assert 'Search <span class="badge degraded">Degraded</span>' in page.text
