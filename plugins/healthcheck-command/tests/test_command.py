"""The command strategy through HTTP against scripts the tests write: exit codes, output
assertions, timeouts (the whole process group killed), start failures, the environment passed
on (secrets masked, the server's own variables withheld), and the rule that guards it all."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from checkstack_core import BadRequest, Forbidden

MANAGE = "healthcheck.healthcheck.manage"
READ = "healthcheck.healthcheck.read"
COMMAND = "healthcheck-command.command.manage"


def script(tmp_path: Path, body: str, name: str = "check.sh") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def run(client: Any, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"name": "command", "strategyId": "command", "config": config, **fields}
    check = await client.call("healthcheck", "createHealthCheck", body)
    return dict(await client.call("healthcheck", "runNow", {"id": check["id"]}))


async def test_the_strategy_is_served_with_its_schema(admin):
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    command = next(s for s in strategies if s["id"] == "command")
    schema = command["configSchema"]
    assert schema["required"] == ["command"]
    assert schema["properties"]["secretEnv"]["additionalProperties"]["x-secret"] is True


async def test_a_passing_command_is_healthy(admin, tmp_path):
    path = script(tmp_path, 'echo "status: ok, $1"\necho warming >&2\n')
    ran = await run(
        admin,
        {
            "command": path,
            "args": ["$(touch pwned); *"],
            "assertions": [
                {"operator": "contains", "value": "status: ok"},
                {"operator": "matches", "value": r"ok, \$\(touch pwned\); \*$"},
                {"stream": "stderr", "operator": "notContains", "value": "error"},
            ],
        },
    )
    assert (ran["status"], ran["message"]) == ("healthy", "Exit code 0")
    assert ran["result"]["stdout"] == "status: ok, $(touch pwned); *\n"
    assert ran["result"]["stderr"] == "warming\n"
    assert not (tmp_path / "pwned").exists()  # no shell: the argument stayed text


async def test_failures_are_unhealthy_with_a_clear_message(admin, tmp_path):
    for body, config, message in [
        ("exit 3\n", {}, "Exit code 3 (expected 0)"),
        ("exit 1\n", {"expectedExitCodes": [0, 2]}, "Exit code 1 (expected 0, 2)"),
        (
            "echo degraded\n",
            {"assertions": [{"value": "ok"}]},
            "stdout does not contain the expected text",
        ),
        (
            "echo fine; echo 'disk error' >&2\n",
            {"assertions": [{"stream": "stderr", "operator": "notContains", "value": "error"}]},
            "stderr contains unexpected text",
        ),
        (
            "echo 'latency=abc'\n",
            {"assertions": [{"operator": "matches", "value": r"latency=\d+"}]},
            "stdout does not match the expected pattern",
        ),
        ("kill -9 $$\n", {}, "Command was killed by signal SIGKILL"),
    ]:
        ran = await run(admin, {"command": script(tmp_path, body), **config})
        assert (ran["status"], ran["message"]) == ("unhealthy", message)


async def test_an_expected_exit_code_other_than_zero_is_healthy(admin, tmp_path):
    ran = await run(admin, {"command": script(tmp_path, "exit 2\n"), "expectedExitCodes": [2]})
    assert (ran["status"], ran["message"]) == ("healthy", "Exit code 2")


async def test_a_command_found_on_path_runs(admin):
    ran = await run(admin, {"command": "true"})
    assert ran["status"] == "healthy"


async def test_start_failures_are_clear(admin, tmp_path):
    missing = await run(admin, {"command": str(tmp_path / "nope.sh")})
    assert (missing["status"], missing["message"]) == ("unhealthy", "Command not found")
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\n")
    denied = await run(admin, {"command": str(plain)})
    assert denied["message"] == "Permission denied: the command cannot run"
    nowhere = await run(admin, {"command": "true", "workingDir": str(tmp_path / "gone")})
    assert nowhere["message"] == "Working directory not found"


async def test_a_timeout_kills_the_whole_process_group(admin, tmp_path):
    pids = tmp_path / "pids"
    path = script(tmp_path, f"sleep 60 &\necho $! > {pids}\nsleep 60\n")
    ran = await run(admin, {"command": path}, timeoutSeconds=1)
    assert (ran["status"], ran["message"]) == ("unhealthy", "Command timed out after 0.9 s")
    child = int(pids.read_text())
    # The background child went with the group (killed, then reaped by init): poll, bounded.
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the command's child outlived the timeout"
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    # A zombie is dead: only its parent has not read its exit status yet.
    return not (status.exists() and status.read_text().split(") ", 1)[1].startswith("Z"))


async def test_environment_secrets_masked_and_server_variables_withheld(
    admin, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("CHECKSTACK_TEST_LEAK", "server-only")
    path = script(tmp_path, 'echo "$GREETING $TOKEN ${CHECKSTACK_TEST_LEAK:-none}"; pwd\n')
    config = {
        "command": path,
        "env": {"GREETING": "hello"},
        "secretEnv": {"TOKEN": "s3cr3t-t0ken"},
        "workingDir": str(tmp_path),
        "assertions": [{"operator": "matches", "value": "(?m)^hello .+ none$"}],
    }
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "env", "strategyId": "command", "config": config},
    )
    assert check["config"]["secretEnv"] == {"TOKEN": "********"}
    ran = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert ran["status"] == "healthy", ran
    # The secret reached the command (and is masked in the output kept from it).
    assert ran["result"]["stdout"] == f"hello ******** none\n{tmp_path}\n"
    shown = await admin.call("healthcheck", "getHealthChecks", {})
    assert "s3cr3t-t0ken" not in str([check, ran, shown]) + caplog.text


async def test_bad_configs_are_refused_with_the_path(admin):
    for config, path in [
        ({"command": "true", "workingDir": "relative/dir"}, ["config", "workingDir"]),
        (
            {"command": "true", "assertions": [{"operator": "matches", "value": "("}]},
            ["config", "assertions", 0],
        ),
        ({"command": "true", "env": {"BAD-NAME": "x"}}, ["config", "env", "BAD-NAME"]),
        ({"command": "true", "expectedExitCodes": [256]}, ["config", "expectedExitCodes", 0]),
        ({"command": ""}, ["config", "command"]),
        ({"command": "true", "secretEnv": {"TOKEN": "a\0b"}}, ["config", "secretEnv", "TOKEN"]),
        ({"command": "true", "args": ["a", "b\0"]}, ["config", "args", 1]),
    ]:
        with pytest.raises(BadRequest) as refused:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "bad", "strategyId": "command", "config": config},
            )
        assert [issue["path"] for issue in refused.value.data["issues"]] == [path]


async def test_only_holders_of_the_command_rule_may_create_edit_or_run(
    admin, checkstack_client, checkstack_auth, tmp_path
):
    """An attacker holding healthcheck manage (and read) but not the command rule would run any
    program on the server host: every way in is FORBIDDEN, and nothing runs."""
    attacker = checkstack_client(checkstack_auth.user(MANAGE, READ, name="Mallory"))
    operator = checkstack_client(checkstack_auth.user(MANAGE, READ, COMMAND, name="Olga"))
    marker = tmp_path / "ran"
    evil = {"command": "touch", "args": [str(marker)]}

    with pytest.raises(Forbidden, match=r"healthcheck-command\.command\.manage"):
        await attacker.call(
            "healthcheck",
            "createHealthCheck",
            {"name": "evil", "strategyId": "command", "config": evil},
        )
    benign = await operator.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "ok", "strategyId": "command", "config": {"command": "true"}},
    )
    with pytest.raises(Forbidden):
        await attacker.call(
            "healthcheck", "updateHealthCheck", {"id": benign["id"], "config": evil}
        )
    with pytest.raises(Forbidden):
        await attacker.call("healthcheck", "runNow", {"id": benign["id"]})
    assert not marker.exists()
    shown = await admin.call("healthcheck", "getHealthCheck", {"id": benign["id"]})
    assert shown["config"]["command"] == "true"

    ran = await operator.call("healthcheck", "runNow", {"id": benign["id"]})
    assert (ran["status"], ran["message"]) == ("healthy", "Exit code 0")
