"""procrastinate's schema, applied by this plugin's Alembic revisions (the core's migrations).

procrastinate ships its whole schema (``schema.sql``) and, for existing databases, one SQL file
per change (``sql/migrations``). Revision ``procrastinate_0001`` applies the whole schema of the
installed release; a release whose migration files go beyond :data:`APPLIED_THROUGH` changed the
schema, and the engine refuses to start on it (naming the files) until a new revision applies
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from procrastinate.schema import SchemaManager

#: The newest procrastinate migration whose effect the revisions of this plugin include
#: (procrastinate 3.4 through 3.10 share this schema).
APPLIED_THROUGH = "03.04.00_50_post_add_retry_failed_job_procedure.sql"


def procrastinate_schema() -> str:
    return SchemaManager.get_schema()


def unapplied_migrations() -> list[str]:
    """procrastinate's migration files newer than :data:`APPLIED_THROUGH`."""
    folder = Path(SchemaManager.get_migrations_path())
    names = sorted(p.name for p in folder.glob("*.sql"))
    return [name for name in names if name > APPLIED_THROUGH]


def check_schema_version() -> None:
    newer = unapplied_migrations()
    if newer:
        import procrastinate

        version = getattr(procrastinate, "__version__", "installed")
        raise RuntimeError(
            f"procrastinate {version} changes its schema ({', '.join(newer)}), which "
            "checkstack-engine-procrastinate does not migrate yet: install the procrastinate "
            "release this plugin pins, or a plugin release that applies these files."
        )


def apply_sql(bind: Any, script: str) -> None:
    """Run a multi-statement SQL script on the migration's connection.

    asyncpg prepares each statement, and a prepared statement holds one command; its
    ``execute`` without arguments takes a whole script, so the script goes to it directly.
    """
    from sqlalchemy.util import await_only

    raw = bind.connection.dbapi_connection  # SQLAlchemy's adapter around the asyncpg connection
    await_only(raw.driver_connection.execute(script))
