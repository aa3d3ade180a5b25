"""Key measurements on the SHA-256 of the architecture's text, kept alongside, instead of on the text.

PostgreSQL refuses a btree index row over 2,704 bytes, so the old key failed
for an architecture of about that many characters; 64 hex digits always fit.
Existing rows get their digests here, in batches, before the key changes.

Revision ID: 0002
Revises: 0001
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

KEY = ["target", "config_key", "host_key", "space", "space_key"]
BATCH = 5000  # rows read and updated at a time: a large store is never held in memory whole
measurements = sa.table(
    "measurements", sa.column("id", sa.Integer), sa.column("arch", sa.Text), sa.column("arch_sha256", sa.String)
)


def _fill_digests() -> None:
    """Each row's digest of its text, as the store computes it (`ehdnas.pipeline.store.arch_sha256`)."""
    connection, last = op.get_bind(), 0
    row, digest = sa.bindparam("row"), sa.bindparam("digest")
    fill = measurements.update().where(measurements.c.id == row).values(arch_sha256=digest)
    batch = sa.select(measurements.c.id, measurements.c.arch).order_by(measurements.c.id).limit(BATCH)
    while rows := connection.execute(batch.where(measurements.c.id > last)).all():
        connection.execute(fill, [{"row": i, "digest": hashlib.sha256(arch.encode()).hexdigest()} for i, arch in rows])
        last = rows[-1].id


def upgrade() -> None:
    op.add_column("measurements", sa.Column("arch_sha256", sa.String(64), nullable=True))
    _fill_digests()
    with op.batch_alter_table("measurements") as batch:  # SQLite changes a constraint by copying the table
        batch.alter_column("arch_sha256", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_measurement", type_="unique")
        batch.create_unique_constraint("uq_measurement", [*KEY, "arch_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_constraint("uq_measurement", type_="unique")
        batch.create_unique_constraint("uq_measurement", [*KEY, "arch"])
        batch.drop_column("arch_sha256")
