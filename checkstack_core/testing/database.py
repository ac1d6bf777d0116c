"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database per test.

``CHECKSTACK_TEST_DATABASE_URL`` (or ``pytest --checkstack-db-url``) selects PostgreSQL, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``: each test then gets its own database
created next to that one and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ..db import normalize_url


@asynccontextmanager
async def temporary_database(base_url: str | None, directory: Path) -> AsyncIterator[str]:
    """Yield the URL of an empty database; remove it afterwards."""
    if not base_url or make_url(base_url).get_backend_name() == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'checkstack-test.db'}"
        return
    url = make_url(normalize_url(base_url))
    name = f"checkstack_test_{uuid.uuid4().hex[:12]}"
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
