"""Login throttling: failed logins per account and per client address.

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0002"
down_revision: str | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_throttle",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )
    op.create_index("ix_auth_login_throttle_window_start", "auth_login_throttle", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_auth_login_throttle_window_start", table_name="auth_login_throttle")
    op.drop_table("auth_login_throttle")
