"""What a server start imports: the libraries only some requests need wait for those requests.

A restart on an up-to-date database is the common start (a deploy, a crash, a scaled-out
process); it should pay neither for Alembic (only needed when a revision is pending) nor for the
HTTP client the notification plugin sends with (only needed by the first delivery).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import asyncio, json, sys
from checkstack_core.host import Host
from checkstack_core.settings import Settings

async def main():
    host = Host(Settings.load())
    await host.start()
    loaded = sorted(sys.modules)
    await host.stop()
    return loaded

print(json.dumps(asyncio.run(main())))
"""


def _start(tmp_path: Path) -> set[str]:
    env = {
        **os.environ,
        "CHECKSTACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'start.db'}",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_LOG_LEVEL": "WARNING",
    }
    env.pop("CHECKSTACK_PLUGINS", None)  # every installed plugin, as `checkstack serve`
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.e2e
def test_a_restart_on_an_up_to_date_database_imports_neither_alembic_nor_httpx(tmp_path):
    first = _start(tmp_path)
    assert "alembic" in first  # the first start applied every revision
    again = _start(tmp_path)
    assert "checkstack_notification.outbox" in again  # the plugins did load
    assert {"alembic", "httpx"} & again == set()
