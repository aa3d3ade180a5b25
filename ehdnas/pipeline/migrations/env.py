"""Alembic's entry point: run the revisions on the connection that `ehdnas.pipeline.migrations` hands over.

Online only, inside the caller's transaction (which holds the schema lock: `ehdnas.pipeline.store.schema_lock`).
"""

from alembic import context

context.configure(connection=context.config.attributes["connection"], render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
