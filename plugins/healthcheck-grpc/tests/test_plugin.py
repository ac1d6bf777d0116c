"""The distribution as the server finds it: an entry point naming a plugin of the healthcheck
plugin, whose import loads neither the server nor the grpc client library (the server imports every
installed strategy at startup; the library loads on the first run)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

PROBE = """
import json, sys
import checkstack_healthcheck_grpc
print(json.dumps(sorted(sys.modules)))
"""


def test_the_entry_point_names_a_plugin_of_the_healthcheck_plugin() -> None:
    found = {ep.name: ep for ep in entry_points(group="checkstack.plugins")}
    plugin = found["healthcheck-grpc"].load()
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-grpc", ["healthcheck"])
    assert [s.id for s in plugin.hooks.checkstack_healthcheck_strategies()] == ["grpc"]


def test_importing_the_plugin_loads_no_server_and_no_client_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    heavy = {
        "grpc",
        "grpc_health",
        "google.protobuf",
        "sqlalchemy",
        "litestar",
        "checkstack_healthcheck.service",
    }
    assert heavy & loaded == set()
