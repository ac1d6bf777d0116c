"""The request path holds under concurrent load (issue 8), end to end.

A real ``checkstack serve`` process (every installed plugin) on the test database (SQLite, or
PostgreSQL with ``CHECKSTACK_TEST_DATABASE_URL``), seeded through its API; 64 concurrent clients,
each on its own connection, call every list procedure of every installed plugin for a few
seconds, anonymously and with a read-only API key. Every request must get a 200 within a generous
limit: no error answer, no hung request. Nothing here asserts how fast the server is (that is the
job of ``bench/reads.py`` and ``bench/load_acceptance.py``), only that concurrency never turns
into errors or waits: the failure this guards against is pool exhaustion, where each call holds
one database connection and waits for a second one (500s after the pool timeout, or requests that
never answer).

The list procedures are found in the server's OpenAPI document (queries named ``get...`` that
need no input and answer an object with a required array), so a new plugin's lists are covered
without touching this test.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from checkstack_core.testing.server import RunningServer

pytestmark = pytest.mark.e2e

CLIENTS = 64
#: How long the clients keep calling (seconds); requests started before the end run to completion.
DURATION = 2.5
#: A request without an answer after this long counts as hung (far beyond any healthy answer).
REQUEST_TIMEOUT = 15.0
ADMIN = {"email": "load@example.com", "password": "Load-test-pass-123"}
ANONYMOUS, KEY = "anonymous", "key"


@dataclass(frozen=True)
class Target:
    plugin: str
    procedure: str
    caller: str
    headers: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return f"{self.plugin}.{self.procedure} ({self.caller})"


async def _call(
    http: httpx.AsyncClient,
    plugin: str,
    procedure: str,
    input: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    response = await http.post(f"/api/{plugin}/", json={procedure: input or {}}, headers=headers)
    assert response.status_code == 200, (plugin, procedure, response.text)
    return response.json()[procedure]


async def _prepare(http: httpx.AsyncClient) -> tuple[str, set[str], set[str]]:
    """Onboard, make a read-only key (a role with every ``read`` rule) and seed every plugin.

    Returns the key, the rules its role holds and the rules the anonymous role holds."""
    response = await http.post("/api/auth/", json={"completeOnboarding": ADMIN})
    assert response.status_code == 200, response.text
    admin = {"Cookie": f"checkstack_session={response.cookies['checkstack_session']}"}
    rules = (await _call(http, "auth", "getRules", headers=admin))["rules"]
    read_rules = {rule["id"] for rule in rules if rule["level"] == "read"}
    public_rules = {rule["id"] for rule in rules if rule["public"]}
    role = await _call(
        http, "auth", "createRole", {"name": "reader", "rules": sorted(read_rules)}, admin
    )
    app = await _call(
        http, "auth", "createApplication", {"name": "reader", "roles": [role["id"]]}, admin
    )

    systems = [
        (await _call(http, "catalog", "createSystem", {"name": f"System {i}"}, admin))["id"]
        for i in range(4)
    ]
    group = await _call(http, "catalog", "createGroup", {"name": "Group"}, admin)
    membership = {"groupId": group["id"], "systemId": systems[0]}
    await _call(http, "catalog", "addSystemToGroup", membership, admin)
    await _call(http, "auth", "createTeam", {"name": "Team"}, admin)
    incident = {"title": "Slow", "severity": "minor", "systemIds": systems[:2]}
    await _call(http, "incident", "createIncident", incident, admin)
    start = datetime.now(UTC) + timedelta(days=1)
    window = {
        "title": "Upgrade",
        "startAt": start.isoformat(),
        "endAt": (start + timedelta(hours=1)).isoformat(),
        "systemIds": systems[1:3],
    }
    await _call(http, "maintenance", "scheduleWindow", window, admin)
    return app["token"], read_rules, public_rules


def _schema(document: dict[str, Any], envelope: dict[str, Any] | None) -> dict[str, Any]:
    """The schema of the ``json`` member of an oRPC envelope, resolved."""
    inner = ((envelope or {}).get("properties") or {}).get("json") or {}
    ref = inner.get("$ref", "")
    if ref:
        return dict(document["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return dict(inner)


async def _targets(
    http: httpx.AsyncClient, key: str, key_rules: set[str], public_rules: set[str]
) -> list[Target]:
    """Every (list procedure, caller allowed to call it) of the running server."""
    document = (await http.get("/api/openapi.json")).raise_for_status().json()
    targets: list[Target] = []
    for path, item in sorted(document["paths"].items()):
        parts = path.strip("/").split("/")
        if len(parts) != 3 or "post" not in item or not parts[2].startswith("get"):
            continue
        operation = item["post"]
        access = operation["x-checkstack-access"]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        output = _schema(
            document, operation["responses"]["200"]["content"]["application/json"]["schema"]
        )
        lists = any(
            output.get("properties", {}).get(name, {}).get("type") == "array"
            for name in output.get("required", [])
        )
        if access["kind"] != "query" or _schema(document, body.get("schema")).get("required"):
            continue
        if not lists:
            continue
        rules, caller = set(access["rules"]), access["caller"]
        if caller == "anonymous" or (caller == "public" and rules <= public_rules):
            targets.append(Target(parts[1], parts[2], ANONYMOUS, ()))
        if caller == "anonymous" or (caller in ("public", "authenticated") and rules <= key_rules):
            targets.append(Target(parts[1], parts[2], KEY, (("Authorization", f"Bearer {key}"),)))
    return targets


@dataclass
class Outcomes:
    answered: Counter[str]
    errors: Counter[str]
    hung: Counter[str]
    examples: dict[str, str]
    #: The slowest answer (seconds): reported with a failure, never asserted on.
    slowest: float = 0.0


async def _load(url: str, targets: list[Target]) -> Outcomes:
    """``CLIENTS`` clients, each on its own connection, cycling through ``targets`` (client i
    starts at target i, so every target is called in the first wave) until ``DURATION``."""
    outcomes = Outcomes(Counter(), Counter(), Counter(), {})
    limits = httpx.Limits(max_connections=1)
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    # Made before the clock starts: building a client costs milliseconds of CPU (an SSL context).
    clients = [
        httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) for _ in range(CLIENTS)
    ]
    deadline = time.monotonic() + DURATION

    async def run(index: int, http: httpx.AsyncClient) -> None:
        n = index
        while time.monotonic() < deadline:
            target = targets[n % len(targets)]
            n += 1
            body = f'{{"{target.procedure}": {{}}}}'.encode()
            headers = {"content-type": "application/json", **dict(target.headers)}
            started = time.monotonic()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    response = await http.post(
                        f"/api/{target.plugin}/", content=body, headers=headers
                    )
            except (TimeoutError, httpx.TimeoutException):
                outcomes.hung[target.label] += 1
                continue
            except httpx.HTTPError as error:
                outcomes.errors[target.label] += 1
                outcomes.examples.setdefault(target.label, repr(error))
                continue
            outcomes.slowest = max(outcomes.slowest, time.monotonic() - started)
            if response.status_code == 200:
                outcomes.answered[target.label] += 1
            else:
                outcomes.errors[target.label] += 1
                outcomes.examples.setdefault(
                    target.label, f"{response.status_code} {response.text[:200]}"
                )

    try:
        await asyncio.gather(*(run(i, http) for i, http in enumerate(clients)))
    finally:
        for http in clients:
            await http.aclose()
    return outcomes


async def test_every_list_procedure_holds_64_concurrent_clients(
    checkstack_server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=checkstack_server.url, timeout=60) as http:
        key, key_rules, public_rules = await _prepare(http)
        targets = await _targets(http, key, key_rules, public_rules)
        labels = {t.label for t in targets}
        # The discovery found the first-party lists, for both callers, or the test proves nothing.
        for expected in (
            "catalog.getSystems (anonymous)",
            "catalog.getSystems (key)",
            "incident.getIncidents (anonymous)",
            "maintenance.getWindows (key)",
            "auth.getUsers (key)",
        ):
            assert expected in labels, sorted(labels)
        for target in targets:  # each works alone before it is loaded
            response = await http.post(
                f"/api/{target.plugin}/",
                json={target.procedure: {}},
                headers=dict(target.headers),
            )
            assert response.status_code == 200, (target.label, response.text)

    outcomes = await _load(checkstack_server.url, targets)

    report = (
        f"errors: {dict(outcomes.errors)}\nhung (no answer in {REQUEST_TIMEOUT:.0f} s): "
        f"{dict(outcomes.hung)}\nexamples: {outcomes.examples}\nanswered: "
        f"{dict(outcomes.answered)}\nslowest answer: {outcomes.slowest:.1f} s"
    )
    assert not outcomes.errors, report
    assert not outcomes.hung, report
    assert set(outcomes.answered) == labels, report
    assert "Traceback" not in checkstack_server.logs(), checkstack_server.logs()[-3000:]
