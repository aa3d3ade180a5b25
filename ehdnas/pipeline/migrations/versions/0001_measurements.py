"""The measurements table as every store before migrations had it: the unique key holds the architecture's text.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

KEY = ["target", "config_key", "host_key", "space", "space_key"]  # with the architecture: one measurement each


def upgrade() -> None:
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("target", sa.String(64), nullable=False, index=True),
        sa.Column("config_key", sa.String(16), nullable=False),
        sa.Column("host_key", sa.String(16), nullable=False),
        sa.Column("space", sa.String(64), nullable=False, index=True),
        sa.Column("space_key", sa.String(16), nullable=False),
        sa.Column("arch", sa.Text, nullable=False),
        sa.Column("space_config", sa.Text, nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measurement", sa.Text, nullable=False),
        sa.UniqueConstraint(*KEY, "arch", name="uq_measurement"),
    )


def downgrade() -> None:
    op.drop_table("measurements")
