"""A real PostgreSQL for the tests: one server per test session (pgserver, from pip), a fresh database per test.

`store_url` runs a test once on a SQLite file and once on PostgreSQL. The
server listens on a Unix socket in its own folder only (no TCP port); as root,
pgserver runs it as a system user it creates, since PostgreSQL refuses root.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A running PostgreSQL server (a `pgserver.PostgresServer`), stopped and deleted at the end of the session."""
    with warnings.catch_warnings():  # pgserver asks platformdirs for a runtime folder on import; /tmp is fine
        warnings.simplefilter("ignore")
        import pgserver

    # Not under pytest's folder: pgserver opens the folders above its data to its system user, and pytest closes
    # its own again whenever a session starts.
    with tempfile.TemporaryDirectory(prefix="ehdnas-postgres-") as folder:
        server = pgserver.get_server(Path(folder) / "data")
        yield server
        server.cleanup()


@pytest.fixture
def postgres_url(postgres: Any) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    server_url = make_url(postgres.get_uri()).set(drivername="postgresql+psycopg")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))  # the test's engines may still hold some
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A new store's URL: a SQLite file (`db_url`), then a PostgreSQL database."""
    return request.getfixturevalue("db_url" if request.param == "sqlite" else "postgres_url")
