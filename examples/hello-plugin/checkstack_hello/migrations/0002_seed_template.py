"""Seed the template row, so every change is an UPDATE.

Without it, the first two concurrent setGreeting calls could both find no row and both INSERT,
and one would fail with a conflict.

Revision ID: hello_0002
Revises: hello_0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "hello_0002"
down_revision: str | None = "hello_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

greeting = sa.table(
    "hello_greeting",
    sa.column("id", sa.Integer()),
    sa.column("template", sa.String()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Only where the table is still empty: an upgrade never overwrites a chosen template.
    empty = op.get_bind().execute(sa.select(sa.func.count()).select_from(greeting)).scalar() == 0
    if empty:
        op.bulk_insert(
            greeting,
            [{"id": 1, "template": "Hello, {name}!", "updated_at": datetime.now(UTC)}],
        )


def downgrade() -> None:
    # The row may hold a template someone chose since; removing it would lose data.
    pass
