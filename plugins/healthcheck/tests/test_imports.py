"""Strategy plugins depend on the healthcheck plugin's hookspec module alone: importing it (and
every installed strategy plugin) loads neither the server, the database layer nor the
healthcheck plugin's service."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, sys
from importlib.metadata import entry_points
import checkstack_healthcheck.strategy
for found in entry_points(group="checkstack.plugins"):
    if found.name.startswith("healthcheck-"):
        importlib.import_module(found.module)
print(json.dumps(sorted(sys.modules)))
"""

#: The first-party strategy distributions; each must be installed in this workspace.
FIRST_PARTY = (
    "healthcheck-http",
    "healthcheck-tcp",
    "healthcheck-dns",
    "healthcheck-tls",
    "healthcheck-ping",
    "healthcheck-grpc",
    "healthcheck-ssh",
    "healthcheck-command",
    "healthcheck-postgres",
    "healthcheck-mysql",
    "healthcheck-redis",
    "healthcheck-mqtt",
    "healthcheck-amqp",
)


def test_strategy_plugins_load_no_server_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    server = {
        "checkstack_healthcheck.service",
        "checkstack_healthcheck.models",
        "checkstack_healthcheck._plugin",
        "checkstack_core.context",
        "checkstack_core.db",
        "sqlalchemy",
        "sqlmodel",
        "litestar",
    }
    assert server & loaded == set()
    # Client libraries that take a noticeable time to import wait for their strategy's first
    # run, so a server start does not pay for strategies nobody uses.
    deferred = {
        "dns",
        "grpc",
        "asyncssh",
        "asyncpg",
        "asyncmy",
        "redis",
        "aiomqtt",
        "paho",
        "aiormq",
        "pamqp",
        "yarl",
        "httpx",
        # The server loads cryptography's Fernet for the vault anyway; X.509 costs more.
        "cryptography",
    }
    assert {name.split(".")[0] for name in loaded} & deferred == set()


def test_strategy_plugins_are_discovered_as_plugins_of_the_plugin() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.load() for ep in entry_points(group="checkstack.plugins")}
    for name in FIRST_PARTY:
        assert found[name].id == name
        assert list(found[name].depends_on) == ["healthcheck"]
    assert found["healthcheck"].hookspecs is not None
