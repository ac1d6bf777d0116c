"""Health checks end to end through the documented protocol (in process): create, validate,
run against local targets, history, thresholds, system health and its events."""

from __future__ import annotations

import pytest

from checkstack_core import BadRequest, NotFound


async def test_strategies_are_served_with_schemas(admin):
    listed = await admin.call("healthcheck", "getStrategies")
    by_id = {s["id"]: s for s in listed["strategies"]}
    assert set(by_id) == {"http", "tcp"}
    http = by_id["http"]["configSchema"]
    assert "url" in http["properties"]
    assert http["properties"]["secretHeaders"]["additionalProperties"]["x-secret"] is True
    assert by_id["tcp"]["configSchema"]["required"] == ["host", "port"]


async def test_a_200_is_healthy_and_stored(admin, make_check, make_system, target):
    system = await make_system("api")
    check = await make_check({"url": target.url + "/health"})
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    run = await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
    assert run["status"] == "healthy"
    assert run["message"].startswith("HTTP 200 in ")
    assert run["result"]["statusCode"] == 200
    history = await admin.call("healthcheck", "getHistory", {"systemId": system})
    assert history["total"] == 1
    assert [r["id"] for r in history["runs"]] == [run["id"]]


@pytest.mark.parametrize(
    ("answer", "config", "message"),
    [
        ({"status": 500}, {}, "HTTP 500 (expected 2xx or 3xx)"),
        (
            {"body": "nope"},
            {"assertions": [{"type": "bodyContains", "value": "ok"}]},
            "Assertion 1 failed: the body does not contain the expected text",
        ),
        (
            {"body": '{"status": "down"}'},
            {
                "assertions": [
                    {"type": "jsonPath", "path": "$.status", "operator": "equals", "value": "up"}
                ]
            },
            "Assertion 1 failed: JSONPath $.status does not equal the expected value",
        ),
        (
            {"body": "ok"},
            {"assertions": [{"type": "bodyMatches", "pattern": "^OK$"}]},
            "Assertion 1 failed: the body does not match the pattern",
        ),
        (
            {"headers": {"X-Version": "1"}},
            {
                "assertions": [
                    {"type": "header", "name": "x-version", "operator": "equals", "value": "2"}
                ]
            },
            "Assertion 1 failed: header x-version does not equal the expected value",
        ),
    ],
)
async def test_failures_are_unhealthy_with_a_clear_message(
    admin, make_check, target, answer, config, message
):
    target.answer(**answer)
    check = await make_check({"url": target.url, **config})
    run = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", message)


async def test_passing_assertions_are_healthy(admin, make_check, target):
    target.answer(
        body='{"data": {"items": [{"ok": true}, {"ok": true}]}, "n": 3}',
        headers={"X-Version": "2.1"},
    )
    config = {
        "url": target.url,
        "expectedStatusCodes": [200],
        "assertions": [
            {"type": "jsonPath", "path": "$.data.items[*].ok", "operator": "equals", "value": True},
            {"type": "jsonPath", "path": "$.n", "operator": "greaterThan", "value": 2},
            {"type": "jsonPath", "path": "$..ok"},
            {"type": "bodyMatches", "pattern": r"\"n\": \d"},
            {"type": "header", "name": "X-Version", "operator": "matches", "value": r"^2\."},
        ],
    }
    run = await admin.call("healthcheck", "runNow", {"id": (await make_check(config))["id"]})
    assert run["status"] == "healthy", run["message"]


async def test_slow_answers_are_degraded_and_timeouts_unhealthy(admin, make_check, target):
    target.answer(delay=0.3)
    slow = await make_check({"url": target.url, "degradedLatencyMs": 100})
    run = await admin.call("healthcheck", "runNow", {"id": slow["id"]})
    assert run["status"] == "degraded"
    assert run["message"].startswith("Slow response: ")
    target.answer(delay=5)
    hanging = await make_check({"url": target.url}, timeoutSeconds=0.5)
    run = await admin.call("healthcheck", "runNow", {"id": hanging["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", "Timed out after 0.5 s")


async def test_refused_connections_are_unhealthy(admin, make_check, closed_port):
    http = await make_check({"url": f"http://127.0.0.1:{closed_port}/"})
    tcp = await make_check({"host": "127.0.0.1", "port": closed_port}, strategy="tcp")
    for check in (http, tcp):
        run = await admin.call("healthcheck", "runNow", {"id": check["id"]})
        assert (run["status"], run["message"]) == ("unhealthy", "Connection refused")
        assert "Traceback" not in str(run)


async def test_tcp_banner(admin, make_check, tcp_target):
    good = await make_check(
        {"host": "127.0.0.1", "port": tcp_target.port, "expectBanner": "SSH-2.0"}, strategy="tcp"
    )
    run = await admin.call("healthcheck", "runNow", {"id": good["id"]})
    assert run["status"] == "healthy"
    assert run["result"]["banner"].startswith("SSH-2.0")
    bad = await make_check(
        {"host": "127.0.0.1", "port": tcp_target.port, "expectBanner": "220 "},
        strategy="tcp",
        timeoutSeconds=1,
    )
    run = await admin.call("healthcheck", "runNow", {"id": bad["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", "Banner did not match")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"strategyId": "nope", "config": {}}, ["strategyId"]),
        ({"strategyId": "http", "config": {}}, ["config"]),
        ({"strategyId": "http", "config": {"url": 5}}, ["config", "url"]),
        ({"strategyId": "http", "config": {"url": "ftp://x"}}, ["config", "url"]),
        ({"strategyId": "tcp", "config": {"host": "h", "port": 70000}}, ["config", "port"]),
        (
            {
                "strategyId": "http",
                "config": {
                    "url": "http://x",
                    "assertions": [{"type": "bodyMatches", "pattern": "("}],
                },
            },
            ["config", "assertions", 0, "pattern"],
        ),
    ],
)
async def test_bad_configs_are_refused_with_the_path(admin, body, path):
    with pytest.raises(BadRequest) as refused:
        await admin.call("healthcheck", "createHealthCheck", {"name": "x", **body})
    assert refused.value.data["issues"][0]["path"] == path


async def test_crud_pause_resume_delete(admin, make_check, make_system, target):
    system = await make_system("api")
    check = await make_check({"url": target.url}, intervalSeconds=30)
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    updated = await admin.call(
        "healthcheck",
        "updateHealthCheck",
        {"id": check["id"], "name": "Home", "intervalSeconds": 5},
    )
    assert (updated["name"], updated["intervalSeconds"]) == ("Home", 5)
    assert [a["systemId"] for a in updated["assignments"]] == [system]
    paused = await admin.call("healthcheck", "pauseHealthCheck", {"id": check["id"]})
    assert paused["paused"] is True
    resumed = await admin.call("healthcheck", "resumeHealthCheck", {"id": check["id"]})
    assert resumed["paused"] is False
    listed = await admin.call("healthcheck", "getHealthChecks", {})
    assert [c["id"] for c in listed["healthChecks"]] == [check["id"]]
    assert (await admin.call("healthcheck", "getHealthChecks", {"systemId": system}))[
        "healthChecks"
    ][0]["id"] == check["id"]
    await admin.call("healthcheck", "unassignHealthCheck", {"id": check["id"], "systemId": system})
    assert (await admin.call("healthcheck", "getHealthCheck", {"id": check["id"]}))[
        "assignments"
    ] == []
    await admin.call("healthcheck", "deleteHealthCheck", {"id": check["id"]})
    with pytest.raises(NotFound, match="Health check not found"):
        await admin.call("healthcheck", "getHealthCheck", {"id": check["id"]})


async def test_thresholds_drive_system_health_and_each_change_emits_once(
    admin, make_check, make_system, target, recorder, checkstack_host
):
    system = await make_system("api")
    check = await make_check({"url": target.url})
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})

    async def run() -> str:
        await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
        return str(
            (await admin.call("healthcheck", "getSystemHealth", {"systemId": system}))["status"]
        )

    assert await run() == "healthy"
    target.answer(status=500)
    assert [await run() for _ in range(6)] == [
        "healthy",
        "degraded",
        "degraded",
        "degraded",
        "unhealthy",
        "unhealthy",
    ]
    target.answer()
    assert await run() == "healthy"
    await checkstack_host.events.drain()
    assert recorder.names() == ["degraded", "unhealthy", "healthy"]
    payloads = [p for _, p in recorder.seen]
    assert [p["previousStatus"] for p in payloads] == ["healthy", "degraded", "unhealthy"]
    assert all(p["systemId"] == system and p["suppressed"] is False for p in payloads)
    changes = await admin.call("healthcheck", "getStatusChanges", {"systemId": system})
    assert [(c["fromStatus"], c["toStatus"]) for c in changes["changes"]] == [
        ("unhealthy", "healthy"),
        ("degraded", "unhealthy"),
        ("healthy", "degraded"),
    ]


async def test_window_thresholds(admin, make_check, make_system, target):
    system = await make_system("api")
    check = await make_check({"url": target.url})
    thresholds = {"mode": "window", "windowSize": 4, "degradedAt": 2, "unhealthyAt": 3}
    await admin.call(
        "healthcheck",
        "assignHealthCheck",
        {"id": check["id"], "systemId": system, "thresholds": thresholds},
    )
    seen = []
    for status in (500, 200, 500, 500, 200, 200, 200):
        target.answer(status=status)
        await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
        health = await admin.call("healthcheck", "getSystemHealth", {"systemId": system})
        seen.append(health["status"])
    assert seen == [
        "healthy",
        "healthy",
        "degraded",
        "unhealthy",
        "degraded",
        "degraded",
        "healthy",
    ]


async def test_system_health_is_the_worst_check(
    admin, make_check, make_system, target, closed_port
):
    system = await make_system("api")
    good = await make_check({"url": target.url})
    bad = await make_check({"host": "127.0.0.1", "port": closed_port}, strategy="tcp")
    for check in (good, bad):
        await admin.call(
            "healthcheck",
            "assignHealthCheck",
            {
                "id": check["id"],
                "systemId": system,
                "thresholds": {"mode": "consecutive", "unhealthyAfter": 1},
            },
        )
        await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
    health = await admin.call("healthcheck", "getSystemHealth", {"systemId": system})
    assert health["status"] == "unhealthy"
    assert sorted(c["status"] for c in health["checks"]) == ["healthy", "unhealthy"]
    # Pausing the failing check leaves the good one in charge.
    await admin.call("healthcheck", "pauseHealthCheck", {"id": bad["id"]})
    health = await admin.call("healthcheck", "getSystemHealth", {"systemId": system})
    assert health["status"] == "healthy"
    bulk = await admin.call("healthcheck", "getBulkSystemHealth", {"systemIds": [system, "nope"]})
    assert bulk["statuses"][system]["status"] == "healthy"


async def test_deleting_a_system_removes_its_assignments(
    admin, make_check, make_system, target, checkstack_host
):
    system = await make_system("api")
    check = await make_check({"url": target.url})
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
    await admin.call("catalog", "deleteSystem", {"id": system})
    await checkstack_host.events.drain()
    stored = await admin.call("healthcheck", "getHealthCheck", {"id": check["id"]})
    assert stored["assignments"] == []
    assert (await admin.call("healthcheck", "getHistory", {"systemId": system}))["total"] == 0


async def test_assigning_to_an_unknown_system_is_not_found(admin, make_check, target):
    check = await make_check({"url": target.url})
    with pytest.raises(NotFound, match="System not found: nope"):
        await admin.call(
            "healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": "nope"}
        )
