"""Secret config fields: encrypted at rest, masked in every output, kept when an update sends
the mask back, refused without a server key; never in a log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from checkstack_healthcheck.models import CheckRow
from checkstack_healthcheck.strategy import MASK
from sqlmodel import select

from checkstack_core import BadRequest
from checkstack_core.settings import Settings

TOKEN = "Bearer s3cr3t-T0KEN-value-42"


async def test_a_secret_header_is_masked_encrypted_and_sent(
    admin, make_check, make_system, target, checkstack_host, checkstack_database_url, caplog
):
    caplog.set_level(logging.DEBUG)
    system = await make_system("api")
    config = {"url": target.url, "secretHeaders": {"Authorization": TOKEN}, "headers": {"X-A": "1"}}
    created = await make_check(config)
    assert created["config"]["secretHeaders"] == {"Authorization": MASK}
    assert created["config"]["headers"] == {"X-A": "1"}
    await admin.call("healthcheck", "assignHealthCheck", {"id": created["id"], "systemId": system})
    run = await admin.call("healthcheck", "runNow", {"id": created["id"], "systemId": system})
    assert run["status"] == "healthy"
    assert target.requests[-1]["authorization"] == TOKEN

    outputs: list[Any] = [
        await admin.call("healthcheck", "getHealthCheck", {"id": created["id"]}),
        await admin.call("healthcheck", "getHealthChecks", {}),
        await admin.call("healthcheck", "getHistory", {}),
        await admin.call("healthcheck", "getRun", {"id": run["id"]}),
        run,
    ]
    assert TOKEN not in str(outputs) and "s3cr3t" not in str(outputs)

    async with checkstack_host.db.session() as session:
        stored = (await session.exec(select(CheckRow))).one().config
    assert "s3cr3t" not in stored and "enc:v1:" in stored

    # An update that sends the mask back keeps the secret; a new value replaces it.
    shown = (await admin.call("healthcheck", "getHealthCheck", {"id": created["id"]}))["config"]
    await admin.call(
        "healthcheck", "updateHealthCheck", {"id": created["id"], "config": {**shown, "body": "x"}}
    )
    await admin.call("healthcheck", "runNow", {"id": created["id"]})
    assert target.requests[-1]["authorization"] == TOKEN
    await admin.call(
        "healthcheck",
        "updateHealthCheck",
        {"id": created["id"], "config": {**shown, "secretHeaders": {"Authorization": "new"}}},
    )
    await admin.call("healthcheck", "runNow", {"id": created["id"]})
    assert target.requests[-1]["authorization"] == "new"

    assert "s3cr3t" not in caplog.text
    if checkstack_database_url.startswith("sqlite"):
        await checkstack_host.db.dispose()
        path = Path(checkstack_database_url.split("///", 1)[1])
        for file in path.parent.glob(path.name + "*"):
            assert b"s3cr3t" not in file.read_bytes(), file


@pytest.fixture
def no_key(checkstack_settings: Settings) -> None:
    """No CHECKSTACK_SECRET_KEY on the test host."""
    checkstack_settings.secret_key = None


@pytest.mark.usefixtures("no_key")
async def test_without_a_key_secrets_are_refused_and_other_checks_work(admin, target):
    body = {
        "name": "x",
        "strategyId": "http",
        "config": {"url": target.url, "secretHeaders": {"Authorization": TOKEN}},
    }
    with pytest.raises(BadRequest) as refused:
        await admin.call("healthcheck", "createHealthCheck", body)
    issue = refused.value.data["issues"][0]
    assert issue["path"] == ["config", "secretHeaders", "Authorization"]
    assert "CHECKSTACK_SECRET_KEY" in issue["message"]
    plain = {**body, "config": {"url": target.url}}
    assert (await admin.call("healthcheck", "createHealthCheck", plain))["config"]["url"]
