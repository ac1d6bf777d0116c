"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database per test.

``CHECKSTACK_TEST_DATABASE_URL`` (or ``pytest --checkstack-db-url``) selects PostgreSQL, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``: each test then gets its own database
created next to that one and dropped afterwards, named ``<prefix><12 hex digits>`` (prefix
``checkstack_test_`` unless ``CHECKSTACK_TEST_DATABASE_PREFIX`` or ``--checkstack-db-prefix`` says).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ..db import normalize_url

#: Prefix of the databases :func:`temporary_database` creates on PostgreSQL.
DEFAULT_PREFIX = "checkstack_test_"
#: Environment variable the pytest plugin reads for another prefix.
PREFIX_ENV = "CHECKSTACK_TEST_DATABASE_PREFIX"
# Quoted identifiers could hold more, but a name a DBA hands out is plain; 63 bytes at most.
_PREFIX_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}")


@asynccontextmanager
async def temporary_database(
    base_url: str | None, directory: Path, *, prefix: str = DEFAULT_PREFIX
) -> AsyncIterator[str]:
    """Yield the URL of an empty database; remove it afterwards."""
    if not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"Test database prefix {prefix!r} must be letters, digits and underscores "
            "(at most 51), not starting with a digit"
        )
    if not base_url or make_url(base_url).get_backend_name() == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'checkstack-test.db'}"
        return
    url = make_url(normalize_url(base_url))
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
