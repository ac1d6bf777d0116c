"""A version counter for authorization data, bumped by triggers.

Every process caches the rules of roles and the grants and team-only settings of resources, and
reads ``auth_meta.authz_version`` once per call to know whether its cache is current. The triggers
bump the counter in the same transaction as any change to those tables, whoever makes it (the auth
plugin, the CLI, a cascade from a deleted role or team, or an operator's SQL), so a change takes
effect on the next request in every process.

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0003"
down_revision: str | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables whose rows decide authorization and are cached between requests.
CACHED_TABLES = ("auth_role_rule", "auth_resource_grant", "auth_resource_settings")
_BUMP = "UPDATE auth_meta SET authz_version = authz_version + 1 WHERE id = 1"


def upgrade() -> None:
    op.add_column(
        "auth_meta",
        sa.Column("authz_version", sa.Integer(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION auth_bump_authz_version() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in CACHED_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_authz_version AFTER INSERT OR UPDATE OR DELETE OR "
                f"TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION "
                "auth_bump_authz_version()"
            )
    else:
        for table in CACHED_TABLES:
            for action in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_authz_{action.lower()} AFTER {action} ON {table} "
                    f"BEGIN {_BUMP}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CACHED_TABLES:
            op.execute(f"DROP TRIGGER {table}_authz_version ON {table}")
        op.execute("DROP FUNCTION auth_bump_authz_version()")
    else:
        for table in CACHED_TABLES:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_authz_{action}")
    with op.batch_alter_table("auth_meta") as batch:
        batch.drop_column("authz_version")
