"""The measurement store's schema history, as Alembic revisions applied whenever a store opens.

A store made before this history began (one `measurements` table, no
`alembic_version`) is the baseline revision: it is stamped as such and then
upgraded like any other, so it keeps its rows. A brand-new store runs every
revision from the start, so the revisions themselves are what make it.
The server's job tables are not in this history: they belong to `server`,
a layer above, which creates them itself (`server.jobs`).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

SCRIPTS = Path(__file__).parent
BASELINE = "0001"  # the schema of every store made before migrations (one unique key holding the text)


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration over this folder, running on `connection` (see env.py)."""
    settings = Config()
    settings.set_main_option("script_location", str(SCRIPTS))
    settings.attributes["connection"] = connection
    return settings


def upgrade(connection: Connection) -> None:
    """Bring the store on `connection` to the newest revision, inside the caller's transaction."""
    settings = alembic_config(connection)
    if MigrationContext.configure(connection).get_current_revision() is None:
        if inspect(connection).has_table("measurements"):  # made before migrations
            command.stamp(settings, BASELINE)
    command.upgrade(settings, "head")
