"""The health-check pages, in process: a check created through the form its strategy's schema
generates (secrets masked and kept, API errors beside the field), assigned, run now, paused,
edited and deleted; a system's history with its latency chart and 90-day bars; the health panel
and the status page's uptime bars; a reader without the manage rule gets the API's refusal."""

from __future__ import annotations

import re
from typing import Any

import httpx

ORIGIN = {"Origin": "http://testserver"}


async def page(http: httpx.AsyncClient, caller: Any, path: str, **data: Any) -> httpx.Response:
    if data:
        return await http.post(path, data=data, headers={**ORIGIN, **caller.headers})
    return await http.get(path, headers=caller.headers)


async def test_a_check_from_the_generated_form_to_its_history(
    checkstack_http, admin_caller, make_system, target
):
    system = await make_system("Storefront")
    picker = await page(checkstack_http, admin_caller, "/healthchecks/new")
    assert "Create HTTP check" in picker.text and "Create TCP check" in picker.text
    form = await page(checkstack_http, admin_caller, "/healthchecks/new?strategy=http")
    assert 'name="config.url"' in form.text
    assert 'name="config.secretHeaders.value" type="password"' in form.text

    # A bad value comes back beside its field, with what was typed (never the secret).
    refused = await page(
        checkstack_http,
        admin_caller,
        "/healthchecks/new",
        strategyId="http",
        name="Shop",
        intervalSeconds="60",
        timeoutSeconds="5",
        **{
            "config.url": target.url,
            "config.method": "GET",
            "config.expectedStatusCodes": "200\n700",
            "config.secretHeaders.name": "Authorization",
            "config.secretHeaders.value": "Bearer tok3n",
        },
    )
    assert refused.status_code == 400
    assert re.search(r'id="sf-config-expectedStatusCodes-error">[^<]*599', refused.text), (
        refused.text
    )
    assert "tok3n" not in refused.text and f'value="{target.url}"' in refused.text

    created = await page(
        checkstack_http,
        admin_caller,
        "/healthchecks/new",
        strategyId="http",
        name="Shop",
        intervalSeconds="60",
        timeoutSeconds="5",
        **{
            "config.url": target.url,
            "config.method": "GET",
            "config.expectedStatusCodes": "200",
            "config.secretHeaders.name": "Authorization",
            "config.secretHeaders.value": "Bearer tok3n",
            "config.verifyTls": "on",
        },
    )
    assert created.status_code == 303, created.text
    path = created.headers["location"]
    shown = await page(checkstack_http, admin_caller, path)
    assert "tok3n" not in shown.text and 'value="********"' in shown.text

    # Edit with the mask sent back: the secret stays (the next run sends it).
    saved = await page(
        checkstack_http,
        admin_caller,
        path,
        action="update",
        name="Shop front",
        intervalSeconds="120",
        timeoutSeconds="5",
        **{
            "config.url": target.url,
            "config.method": "GET",
            "config.secretHeaders.name": "Authorization",
            "config.secretHeaders.value": "********",
        },
    )
    assert saved.status_code == 303
    assigned = await page(checkstack_http, admin_caller, path, action="assign", systemId=system)
    assert assigned.status_code == 303
    ran = await page(checkstack_http, admin_caller, path, action="runNow", systemId=system)
    assert ran.status_code == 303 and "?ran=" in ran.headers["location"]
    assert target.requests[-1]["authorization"] == "Bearer tok3n"
    after = await page(checkstack_http, admin_caller, ran.headers["location"].split("#")[0])
    assert "Shop front" in after.text and "every 120 s" in after.text
    assert "(just now)" in after.text and 'class="badge healthy"' in after.text

    history = await page(checkstack_http, admin_caller, f"/systems/{system}/health")
    assert 'class="line-chart"' in history.text and 'class="uptime-bars"' in history.text
    assert "100 % up over the last 90 days" in history.text
    assert "Shop front" in history.text
    panel = await checkstack_http.get(f"/systems/{system}")  # as a visitor
    assert ">Health</h2>" in panel.text and "History and latency" in panel.text
    status = await checkstack_http.get("/")
    assert 'class="uptime-bars"' in status.text and "100 % uptime" in status.text

    # Unassigning asks first; the question names the system, and the answer takes effect.
    shown = await page(checkstack_http, admin_caller, path)
    assert f'href="{path}/unassign/{system}"' in shown.text
    question = await page(checkstack_http, admin_caller, f"{path}/unassign/{system}")
    assert "Stop running “Shop front” for" in question.text
    assert (await page(checkstack_http, admin_caller, path)).text.count(f"/unassign/{system}") == 1
    unassigned = await checkstack_http.post(
        f"{path}/unassign/{system}", headers={**ORIGIN, **admin_caller.headers}
    )
    assert unassigned.status_code == 303
    assert f"/unassign/{system}" not in (await page(checkstack_http, admin_caller, path)).text

    paused = await page(checkstack_http, admin_caller, path, action="pause")
    assert paused.status_code == 303
    assert ">Paused<" in (await page(checkstack_http, admin_caller, path)).text
    confirm = await page(checkstack_http, admin_caller, f"{path}/delete")
    assert "This cannot be undone." in confirm.text
    deleted = await checkstack_http.post(
        f"{path}/delete", headers={**ORIGIN, **admin_caller.headers}
    )
    assert deleted.status_code == 303
    listing = await page(checkstack_http, admin_caller, "/healthchecks")
    assert "No health checks yet." in listing.text


async def test_a_reader_sees_checks_but_changes_are_refused(
    checkstack_http, checkstack_auth, make_check, target
):
    check = await make_check({"url": target.url})
    reader = checkstack_auth.user("healthcheck.healthcheck.read", "catalog.catalog.read")
    listing = await page(checkstack_http, reader, "/healthchecks")
    assert f'href="/healthchecks/{check["id"]}"' in listing.text
    assert "Create Health Check" not in listing.text
    refused = await page(checkstack_http, reader, f"/healthchecks/{check['id']}", action="pause")
    assert refused.status_code == 403
    assert "Missing access: healthcheck.healthcheck.manage" in refused.text
    guest = await checkstack_http.get("/healthchecks")
    assert guest.status_code in (303, 401, 403)


async def test_the_status_page_draws_past_days_and_today(
    checkstack_http, admin, make_system, make_check, target, checkstack_host
):
    from datetime import timedelta

    from checkstack_healthcheck.models import DailyRow

    from checkstack_core.db import utcnow

    system = await make_system("Checkout")
    check = await make_check({"url": target.url})
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    today = utcnow().date()
    async with checkstack_host.db.session() as session:
        for back, unhealthy in ((3, 0), (2, 0), (1, 10)):
            session.add(
                DailyRow(
                    system_id=system,
                    check_id=check["id"],
                    day=today - timedelta(days=back),
                    runs=100,
                    healthy=100 - unhealthy,
                    unhealthy=unhealthy,
                )
            )
        await session.commit()
    await admin.call("healthcheck", "runNow", {"id": check["id"], "systemId": system})
    page = (await checkstack_http.get("/")).text
    titles = re.findall(r"<title>([^<]+)</title>", page)
    day = [(today - timedelta(days=b)).isoformat() for b in range(4)]
    assert f"{day[3]} to {day[2]}: 100 % up each day, worst operational" in titles
    assert f"{day[1]}: 90.00 % up, worst down" in titles
    assert f"{day[0]}: 100 % up, worst operational" in titles
    assert "96.67 % uptime" in page  # 291 of 301 runs up
