"""A strategy may require access rules on top of the manage rule (``Strategy.required_rules``):
create, update and runNow of its checks are FORBIDDEN without them, through HTTP. And a check
whose strategy is no longer installed answers a clear status rather than failing."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest
from checkstack_healthcheck.models import CheckRow
from checkstack_healthcheck.strategy import CheckResult, Strategy
from sqlalchemy import update

from checkstack_core import AccessRule, Contract, Forbidden, Plugin, hookimpl

from .conftest import MANAGE, READ, healthcheck_plugins

GUARD = AccessRule("probe", "manage", "Create and run guarded probes")
GUARD_RULE = GUARD.qualified_id("guarded")  # "guarded.probe.manage"


class GuardedConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    word: str = "hello"


class Guarded(Strategy[GuardedConfig]):
    id = "guarded"
    display_name = "Guarded"
    config_type = GuardedConfig
    required_rules: ClassVar[tuple[str, ...]] = (GUARD_RULE,)

    async def run(self, config: GuardedConfig, deadline: float) -> CheckResult:
        return CheckResult("healthy", message=config.word)


class hooks:
    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[Strategy[Any]]:
        return [Guarded()]


guarded = Plugin(
    id="guarded",
    name="Guarded strategy",
    contract=Contract("guarded", rules=[GUARD]),
    depends_on=["healthcheck"],
    hooks=hooks,
)


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [*healthcheck_plugins(), guarded]


async def test_a_strategy_rule_guards_create_update_and_run(
    admin, checkstack_client, checkstack_auth
):
    attacker = checkstack_client(checkstack_auth.user(MANAGE, READ, name="Mallory"))
    holder = checkstack_client(checkstack_auth.user(MANAGE, READ, GUARD_RULE, name="Hana"))
    body = {"name": "guarded", "strategyId": "guarded", "config": {"word": "hi"}}

    with pytest.raises(Forbidden, match=r"need the access rule guarded\.probe\.manage"):
        await attacker.call("healthcheck", "createHealthCheck", body)
    check = await holder.call("healthcheck", "createHealthCheck", body)
    with pytest.raises(Forbidden):
        await attacker.call(
            "healthcheck", "updateHealthCheck", {"id": check["id"], "config": {"word": "x"}}
        )
    with pytest.raises(Forbidden):
        await attacker.call("healthcheck", "updateHealthCheck", {"id": check["id"], "name": "x"})
    with pytest.raises(Forbidden):
        await attacker.call("healthcheck", "runNow", {"id": check["id"]})
    # Nothing the attacker sent landed; the holder (and an admin) may do all of it.
    assert (await admin.call("healthcheck", "getHealthCheck", {"id": check["id"]}))["config"] == {
        "word": "hi"
    }
    await holder.call(
        "healthcheck", "updateHealthCheck", {"id": check["id"], "config": {"word": "ok"}}
    )
    run = await holder.call("healthcheck", "runNow", {"id": check["id"]})
    assert (run["status"], run["message"]) == ("healthy", "ok")
    run = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert run["message"] == "ok"
    # Reading, pausing and deleting are ordinary management: they cannot change what runs.
    await attacker.call("healthcheck", "pauseHealthCheck", {"id": check["id"]})
    await attacker.call("healthcheck", "deleteHealthCheck", {"id": check["id"]})


async def test_a_check_whose_strategy_is_gone_says_so(
    admin, make_check, tcp_target, checkstack_host
):
    check = await make_check({"host": "127.0.0.1", "port": tcp_target.port}, strategy="tcp")
    # As if checkstack-healthcheck-tcp had been uninstalled: the stored check names a strategy
    # no installed plugin provides.
    async with checkstack_host.db.session() as session:
        await session.exec(
            update(CheckRow).where(CheckRow.id == check["id"]).values(strategy_id="gone")  # type: ignore[arg-type]
        )
        await session.commit()

    shown = await admin.call("healthcheck", "getHealthCheck", {"id": check["id"]})
    assert shown["strategyId"] == "gone"
    assert shown["config"] == {"host": "********", "port": "********"}
    run = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", "Strategy not installed: gone")
    listed = await admin.call("healthcheck", "getHealthChecks", {})
    assert [c["id"] for c in listed["healthChecks"]] == [check["id"]]
