"""The measurement store's schema history, as Alembic revisions applied whenever a store opens.

A store made before this history began (one `measurements` table, no
`alembic_version`) is the baseline revision: it is stamped as such and then
upgraded like any other, so it keeps its rows. A brand-new store runs every
revision from the start, so the revisions themselves are what make it.
A schema change is a model change in `ehdnas.pipeline.store` and a new file in
`versions/`; tests/pipeline/test_migrations.py checks that the two agree.
The server's job tables are not in this history: they belong to `server`,
a layer above, which creates them itself (`server.jobs`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ehdnas.core.errors import UserError

SCRIPTS = Path(__file__).parent
BASELINE = "0001"  # the schema of every store made before migrations (one unique key holding the text)


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(SCRIPTS))


def head() -> str:
    """The newest revision."""
    return _scripts().get_current_head()


def is_current(connection: Connection) -> bool:
    """Whether the store on `connection` is at the newest revision: the check every open makes, without a lock."""
    return MigrationContext.configure(connection).get_current_revision() == head()


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration over this folder, running on `connection` (see env.py)."""
    settings = Config()
    settings.set_main_option("script_location", str(SCRIPTS))
    settings.attributes["connection"] = connection
    return settings


def upgrade(connection: Connection) -> None:
    """Bring the store on `connection` to the newest revision, inside the caller's transaction."""
    settings = alembic_config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and inspect(connection).has_table("measurements"):  # made before migrations
        command.stamp(settings, BASELINE)
    elif current is not None and current not in {script.revision for script in _scripts().walk_revisions()}:
        raise UserError(f"its schema is at revision {current!r}, which this ehdnas does not know (a newer one made it)")
    command.upgrade(settings, "head")
