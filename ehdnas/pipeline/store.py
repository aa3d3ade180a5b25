"""The measurement store: SQLite or PostgreSQL (any SQLAlchemy URL) holding one row per measurement key.

A key is (target, target configuration, host, space, space settings,
architecture): a measurement is taken once and reused by every later job.
The architecture is keyed by the SHA-256 of its canonical text, the text kept
beside it, since PostgreSQL refuses a btree index row over 2,704 bytes.
Writers commit each row on its own, so an interrupted collection keeps what
it measured, and concurrent writers on one SQLite file are serialised by
SQLite's lock (WAL mode, generous busy timeout) rather than failing.
The schema is migrated (`ehdnas.pipeline.migrations`) whenever a store opens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from backends.base import Measurement
from ehdnas.core.errors import UserError
from ehdnas.core.options import canonical_json
from ehdnas.core.paths import default_db_url
from ehdnas.core.writable import file_problem, folder_problem
from ehdnas.pipeline import migrations
from ehdnas.pipeline.key import MeasurementKey

SCHEMA_LOCK = 0x6568646E6173  # PostgreSQL's advisory lock key for schema changes ("ehdnas")


class Base(DeclarativeBase):
    pass


def arch_sha256(arch: str) -> str:
    """The key of an architecture's canonical text: 64 hex digits, however long the text."""
    return hashlib.sha256(arch.encode()).hexdigest()


class MeasurementRow(Base):
    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint(
            "target", "config_key", "host_key", "space", "space_key", "arch_sha256", name="uq_measurement"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(64), index=True)
    config_key: Mapped[str] = mapped_column(String(16))
    host_key: Mapped[str] = mapped_column(String(16))
    space: Mapped[str] = mapped_column(String(64), index=True)
    space_key: Mapped[str] = mapped_column(String(16))
    arch: Mapped[str] = mapped_column(Text)
    arch_sha256: Mapped[str] = mapped_column(String(64))  # the key: `arch_sha256(arch)`
    space_config: Mapped[str] = mapped_column(Text)
    median_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    measurement: Mapped[str] = mapped_column(Text)  # the whole Measurement as JSON, samples included


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA busy_timeout=60000")  # wait for a concurrent writer instead of failing
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
SQLITE_ACCEPTED = "give a SQLite database file, or a path where one can be created and written"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory one, another database, or text that is no URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # make_engine says so
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def check_store_url(url: str) -> None:
    """Refuse, in one line naming `url`, a SQLite file that is not a database or that cannot be written.

    Nothing is made or changed, so a command can ask before any work, and a file that is not a database
    is left as it was, refused in one line rather than with SQLAlchemy's traceback.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_file() and path.stat().st_size:  # SQLite makes an empty file its database
        with path.open("rb") as file:
            if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise UserError(f"database {url!r}: {path} is not a SQLite database; {SQLITE_ACCEPTED}")
    problem = file_problem(path)
    if problem is None and path.exists():  # SQLite writes its journal (-wal, -shm) beside the file
        folder = folder_problem(path.parent)
        problem = folder and f"its folder {path.parent}: {folder}"
    if problem:
        raise UserError(f"database {url!r}: {problem}; {SQLITE_ACCEPTED}")


def make_engine(url: str) -> Engine:
    """An engine for `url` (`check_store_url` first); for SQLite, the parent folder is created and the pragmas set."""
    check_store_url(url)
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
    except Exception as err:  # an unparsable URL or a missing driver
        raise UserError(f"database {url!r}: {err}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as connection:
            current = migrations.is_current(connection)
        if not current:
            with schema_lock(engine) as connection:
                migrations.upgrade(connection)
    except DatabaseError as err:  # not a database, unable to open the file, a read-only one, ...
        raise UserError(f"database {url!r}: {err.orig}") from None
    except UserError as err:
        raise UserError(f"database {url!r}: {err}") from None
    return engine


@contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the database's write lock, so one process at a time creates or migrates tables.

    SQLite: `BEGIN IMMEDIATE` (others wait out the busy timeout); PostgreSQL: an advisory lock released at commit.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":  # pysqlite would start no transaction before DDL
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        yield connection


class Store:
    """Measurements keyed by target, configuration, host, space and architecture."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_db_url()
        self.engine = make_engine(self.url)

    def lookup(self, key: MeasurementKey, arch: str) -> Measurement | None:
        with Session(self.engine) as session:
            query = select(MeasurementRow).filter_by(**key.columns(), arch_sha256=arch_sha256(arch))
            row = session.scalars(query).first()
            return Measurement.from_dict(json.loads(row.measurement)) if row else None

    def lookup_many(self, key: MeasurementKey, archs: list[str]) -> dict[str, Measurement]:
        """The stored measurements of those of `archs` that have one, in one query."""
        wanted = set(archs)
        with Session(self.engine) as session:
            rows = session.execute(select(MeasurementRow.arch, MeasurementRow.measurement).filter_by(**key.columns()))
            return {arch: Measurement.from_dict(json.loads(data)) for arch, data in rows if arch in wanted}

    def stored_archs(self, key: MeasurementKey) -> set[str]:
        with Session(self.engine) as session:
            return set(session.scalars(select(MeasurementRow.arch).filter_by(**key.columns())))

    def measurements(self, key: MeasurementKey) -> list[tuple[str, Measurement]]:
        """Every (architecture, measurement) of one key, oldest first."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(MeasurementRow.arch, MeasurementRow.measurement)
                .filter_by(**key.columns())
                .order_by(MeasurementRow.id)
            )
            return [(arch, Measurement.from_dict(json.loads(data))) for arch, data in rows]

    def record(
        self, measurement: Measurement, space: str, space_config: dict, arch: str, replace: bool = False
    ) -> Measurement:
        """Store `measurement`; if the key is already there, keep the stored one unless `replace`."""
        key = MeasurementKey(measurement.target, measurement.target_config, measurement.host, space, space_config)
        row = MeasurementRow(
            **key.columns(),
            arch=arch,
            arch_sha256=arch_sha256(arch),
            space_config=canonical_json(space_config),
            median_ms=measurement.latency_ms.median,
            created_at=datetime.now(UTC),
            # Without the per-layer figures (a simulated DARTS network's are 50 times the rest of the row).
            measurement=json.dumps(dataclasses.replace(measurement, layers=None).to_dict()),
        )
        with Session(self.engine) as session:
            if replace:
                session.execute(delete(MeasurementRow).filter_by(**key.columns(), arch_sha256=row.arch_sha256))
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent writer stored the same key first
                session.rollback()
                stored = self.lookup(key, arch)
                assert stored is not None
                return stored
        return measurement

    def count(self, **filters: str) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(MeasurementRow).filter_by(**filters)) or 0
