"""Create the ticker's run table.

Revision ID: ticker_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ticker_0001"
down_revision = None
branch_labels = ("ticker",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticker_run",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("ticker_run")
