"""The store's schema migrations on SQLite and PostgreSQL: an old store keeps its rows, a new one matches the models."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from ehdnas.core.errors import UserError
from ehdnas.pipeline import migrations
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import Base, Store, arch_sha256
from tests.pipeline.test_store import CONFIG, HOST, SPACE_CONFIG, fake_measurement, lookup

# The measurements table exactly as the store made it before migrations (create_all at commit 4ac6b04).
OLD_TABLE = """CREATE TABLE measurements (
    id {serial} NOT NULL,
    target VARCHAR(64) NOT NULL,
    config_key VARCHAR(16) NOT NULL,
    host_key VARCHAR(16) NOT NULL,
    space VARCHAR(64) NOT NULL,
    space_key VARCHAR(16) NOT NULL,
    arch TEXT NOT NULL,
    space_config TEXT NOT NULL,
    median_ms FLOAT NOT NULL,
    created_at {timestamp} NOT NULL,
    measurement TEXT NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_measurement UNIQUE (target, config_key, host_key, space, space_key, arch)
)"""
OLD_DDL = {
    "sqlite": [OLD_TABLE.format(serial="INTEGER", timestamp="DATETIME")],
    "postgresql": [OLD_TABLE.format(serial="SERIAL", timestamp="TIMESTAMP WITH TIME ZONE")],
}
OLD_INDEXES = ["CREATE INDEX ix_measurements_space ON measurements (space)",
               "CREATE INDEX ix_measurements_target ON measurements (target)"]  # fmt: skip
ARCHS = {"a": 1.0, "b": 2.0, "c" * 1000: 3.0}
HEAD = migrations.head()


def make_old_store(url: str) -> None:
    """A store as the version before migrations left it: its schema and a few measurements."""
    key = MeasurementKey("ort-cpu", CONFIG, HOST, "darts", SPACE_CONFIG).columns()
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in OLD_DDL[engine.dialect.name] + OLD_INDEXES:
            connection.execute(text(statement))
        for arch, median in ARCHS.items():
            connection.execute(
                text("INSERT INTO measurements (target, config_key, host_key, space, space_key, arch, space_config,"
                     " median_ms, created_at, measurement) VALUES (:target, :config_key, :host_key, :space,"
                     " :space_key, :arch, :space_config, :median, '2026-01-01 00:00:00+00:00', :measurement)"),
                {**key, "arch": arch, "space_config": json.dumps(SPACE_CONFIG), "median": median,
                 "measurement": json.dumps(fake_measurement(median).to_dict())},
            )  # fmt: skip
    engine.dispose()


def schema_problems(store: Store) -> list:
    """How the database's tables differ from the models (Alembic's autogenerate comparison), and its revision."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        return [compare_metadata(context, Base.metadata), context.get_current_revision()]


def test_a_store_made_before_migrations_opens_with_its_rows_keyed_by_their_digests(store_url: str) -> None:
    make_old_store(store_url)
    store = Store(store_url)
    assert schema_problems(store) == [[], HEAD]
    assert {arch: lookup(store, arch).latency_ms.median for arch in ARCHS} == ARCHS
    with store.engine.connect() as connection:
        digests = dict(connection.execute(text("SELECT arch, arch_sha256 FROM measurements")).all())
    assert digests == {arch: arch_sha256(arch) for arch in ARCHS}
    kept = store.record(fake_measurement(9.0), "darts", SPACE_CONFIG, "a")  # the new key holds the old rows
    assert kept.latency_ms.median == 1.0 and store.count() == len(ARCHS)
    # Down to the old schema and up again: the rows stay.
    with store.engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), migrations.BASELINE)
    assert schema_problems(store)[1] == migrations.BASELINE
    assert Store(store_url).count() == len(ARCHS) and schema_problems(store) == [[], HEAD]


def test_a_new_store_is_made_by_the_migrations_and_matches_the_models(store_url: str) -> None:
    store = Store(store_url)
    assert schema_problems(store) == [[], HEAD] and store.count() == 0
    Store(store_url)  # opening it again changes nothing
    assert schema_problems(store) == [[], HEAD]


def test_a_store_from_a_newer_version_is_refused_in_one_line_and_left_as_it_was(db_url: str) -> None:
    Store(db_url)
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(UserError) as refused:
        Store(db_url)
    assert str(refused.value) == (
        f"database {db_url!r}: its schema is at revision '9999', which this ehdnas does not know (a newer one made it)"
    )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "9999"
