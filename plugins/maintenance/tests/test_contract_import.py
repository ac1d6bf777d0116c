"""The contract is importable without the server: clients and other plugins read it, and must
not pay for (or depend on) the service, the tables or SQLAlchemy."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import checkstack_maintenance.contract
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_contract_loads_no_server_module() -> None:
    # A fresh interpreter: this test process has long imported everything.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert "checkstack_maintenance.contract" in loaded
    server = {
        "checkstack_maintenance.service",
        "checkstack_maintenance.models",
        "checkstack_maintenance.handlers",
        "checkstack_core.context",
        "checkstack_core.db",
        "sqlalchemy",
        "sqlmodel",
        "litestar",
    }
    assert server & loaded == set()
    assert not [
        m
        for m in loaded
        if m.startswith("checkstack_catalog.") and m != "checkstack_catalog.contract"
    ]


def test_the_plugin_object_is_still_what_the_package_names() -> None:
    from checkstack_maintenance import plugin

    assert plugin.id == "maintenance"
    assert plugin.contract is not None and plugin.handlers is not None
