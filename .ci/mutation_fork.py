"""A fork server for ``.ci/mutation.py``: pytest runs without paying for the imports every time.

Importing SQLAlchemy, Litestar, httpx, Alembic and pytest itself was most of what one mutant's
test run cost (seconds, against tens of milliseconds for a typical test). This process imports
them once — third-party modules only, never ``checkstack_*``, which must come fresh from the
workspace copy with the mutant applied — then forks a child per request that runs ``pytest.main``.

Protocol, one JSON object per line: the caller writes ``{"args": [...], "out": path}``; this
process answers ``{"pid": n}`` when the child started and ``{"rc": code}`` when it ended. The
child's stdout and stderr go to ``out``. Run it with the workspace as the working directory and
the workspace's ``PYTHONPATH``, as pytest itself would be run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys

#: Imported once, before any fork (what the suite's conftest files and plugins pull in).
PRELOAD = (
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlmodel",
    "sqlmodel.ext.asyncio.session",
    "alembic",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "litestar",
    "litestar.testing",
    "msgspec",
    "httpx",
    "aiosqlite",
    "asyncpg",
    "pluggy",
    "argon2",
    "pytest",
    "pytest_asyncio",
    "_pytest.python",
    "_pytest.fixtures",
)


def main() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    assert not any(m.startswith(("checkstack", "plugins")) for m in sys.modules), (
        "the fork server must not import the code under test"
    )
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one pytest run
            out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.dup2(out, 2)
            code = 1
            try:
                import pytest

                code = int(pytest.main(request["args"]))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
