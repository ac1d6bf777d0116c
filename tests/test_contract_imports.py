"""Every first-party plugin's contract is importable without the server: clients and other
plugins read it, and must not pay for (or depend on) the service, the tables or SQLAlchemy."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

PLUGINS = ["catalog", "healthcheck", "incident", "maintenance"]

PROBE = """
import json, sys
import checkstack_{name}.contract
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("name", PLUGINS)
def test_importing_the_contract_loads_no_server_module(name: str) -> None:
    # A fresh interpreter: this test process has long imported everything.
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name)], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert f"checkstack_{name}.contract" in loaded
    server = {
        f"checkstack_{name}.service",
        f"checkstack_{name}.models",
        f"checkstack_{name}.handlers",
        "checkstack_core.context",
        "checkstack_core.db",
        "sqlalchemy",
        "sqlmodel",
        "litestar",
    }
    assert server & loaded == set()
    # Another plugin's contract may be imported (ids, rules), nothing else of it.
    foreign = [
        module
        for module in loaded
        if module.startswith("checkstack_")
        and not module.startswith(("checkstack_core", f"checkstack_{name}"))
        and not module.endswith(".contract")
        and module.count(".") > 0
    ]
    assert foreign == []


@pytest.mark.parametrize("name", PLUGINS)
def test_the_plugin_object_is_still_what_the_package_names(name: str) -> None:
    plugin = importlib.import_module(f"checkstack_{name}").plugin
    assert plugin.id == name
    assert plugin.contract is not None and plugin.handlers is not None
