"""The measurement store on a real SQLite file and a real PostgreSQL: one row per key, --fresh, long architectures,
concurrent writers, bad paths."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import sqlite3
import string
from pathlib import Path

import pytest

from backends import LatencyStats, Measurement
from ehdnas.core.errors import UserError
from ehdnas.pipeline.key import MeasurementKey
from ehdnas.pipeline.store import SQLITE_ACCEPTED, SQLITE_HEADER, Store, sqlite_file

HOST = {"cpu": "test cpu", "cores": 2, "libraries": {"onnxruntime": "1.0"}}
CONFIG = {"threads": 1}
SPACE_CONFIG = {"layers": 8}


def fake_measurement(median: float, target: str = "ort-cpu", host: dict = HOST) -> Measurement:
    samples = (median, median, median)
    return Measurement(
        target=target,
        target_config=CONFIG,
        host=host,
        model={"model": "m.onnx", "inputs": []},
        latency_ms=LatencyStats.from_samples(list(samples)),
        samples_ms=samples,
        protocol={},
        wall_s=0.1,
        created_at="2026-01-01T00:00:00+00:00",
    )


def lookup(store: Store, arch: str, host: dict = HOST) -> Measurement | None:
    return store.lookup(MeasurementKey("ort-cpu", CONFIG, host, "darts", SPACE_CONFIG), arch)


def test_a_key_is_stored_once_and_fresh_replaces_it(store_url: str) -> None:
    store = Store(store_url)
    assert lookup(store, "a") is None
    first = store.record(fake_measurement(1.0), "darts", SPACE_CONFIG, "a")
    assert lookup(store, "a") == first
    kept = store.record(fake_measurement(2.0), "darts", SPACE_CONFIG, "a")
    assert kept.latency_ms.median == 1.0 and store.count() == 1
    replaced = store.record(fake_measurement(3.0), "darts", SPACE_CONFIG, "a", replace=True)
    assert replaced.latency_ms.median == 3.0 and lookup(store, "a").latency_ms.median == 3.0
    assert store.count() == 1


def test_per_layer_figures_are_not_stored(store_url: str) -> None:
    store = Store(store_url)
    layered = dataclasses.replace(fake_measurement(1.0), layers=[{"name": "conv", "cycles": 10}])
    store.record(layered, "darts", SPACE_CONFIG, "a")
    assert lookup(store, "a") == dataclasses.replace(layered, layers=None)


def test_host_config_and_space_settings_are_part_of_the_key(store_url: str) -> None:
    store = Store(store_url)
    store.record(fake_measurement(1.0), "darts", SPACE_CONFIG, "a")
    other_host = {**HOST, "cpu": "another cpu"}
    assert lookup(store, "a", other_host) is None
    store.record(fake_measurement(2.0, host=other_host), "darts", SPACE_CONFIG, "a")
    store.record(fake_measurement(3.0), "darts", {"layers": 20}, "a")
    assert store.count() == 3
    assert store.stored_archs(MeasurementKey("ort-cpu", CONFIG, HOST, "darts", SPACE_CONFIG)) == {"a"}


def test_the_store_survives_reopening(store_url: str) -> None:
    Store(store_url).record(fake_measurement(1.5), "darts", SPACE_CONFIG, "a")
    assert lookup(Store(store_url), "a").samples_ms == (1.5, 1.5, 1.5)


def _writer(url: str, prefix: str, count: int) -> None:
    store = Store(url)
    for i in range(count):
        store.record(fake_measurement(float(i)), "darts", SPACE_CONFIG, f"{prefix}{i}")
        store.record(fake_measurement(float(i)), "darts", SPACE_CONFIG, f"shared{i}")  # both write these keys


def test_concurrent_writers_on_a_new_store_lose_no_rows_and_keep_the_file_sound(store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")  # each opens (so migrates) the new store at once, then writes
    procs = [ctx.Process(target=_writer, args=(store_url, name, 60)) for name in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert Store(store_url).count() == 3 * 60 + 60
    if path := sqlite_file(store_url):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_architecture_of_4000_characters_is_stored_and_found(store_url: str) -> None:
    # Over PostgreSQL's 2,704-byte cap on an index row, even compressed (random letters): the key holds its digest.
    store = Store(store_url)
    long = "".join(random.Random(0).choices(string.ascii_letters, k=4000))
    longer = long[:-1] + "!"
    store.record(fake_measurement(1.0), "darts", SPACE_CONFIG, long)
    store.record(fake_measurement(2.0), "darts", SPACE_CONFIG, longer)
    assert store.record(fake_measurement(3.0), "darts", SPACE_CONFIG, long).latency_ms.median == 1.0  # kept
    assert lookup(store, long).latency_ms.median == 1.0 and lookup(store, longer).latency_ms.median == 2.0
    key = MeasurementKey("ort-cpu", CONFIG, HOST, "darts", SPACE_CONFIG)
    assert store.stored_archs(key) == {long, longer} and set(store.lookup_many(key, [long, "z"])) == {long}
    assert store.count() == 2


def test_default_location_honours_the_environment(monkeypatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("EHDNAS_DB", url)
    assert Store().url == url
    monkeypatch.delenv("EHDNAS_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert Store().url == f"sqlite:///{tmp_path / 'data' / 'ehdnas' / 'ehdnas.db'}"
    assert (tmp_path / "data" / "ehdnas" / "ehdnas.db").is_file()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"hello\n", "{path} is not a SQLite database"),  # caught by its header, before SQLite opens it
        (SQLITE_HEADER + b"garbage" * 100, "file is not a database"),  # the right header, the wrong rest: SQLite's
    ],
)
def test_a_file_that_is_not_a_database_is_refused_naming_the_url_and_left_as_it_was(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    url = f"sqlite:///{path}"
    with pytest.raises(UserError) as refused:
        Store(url)
    assert str(refused.value).startswith(f"database {url!r}: {problem.format(path=path)}")
    assert path.read_bytes() == content and os.listdir(tmp_path) == ["notes.db"]


def test_an_empty_file_is_taken_for_a_new_store(tmp_path: Path) -> None:
    # SQLite makes an empty file its database (`touch store.db` names one): not refused as "not a database".
    (tmp_path / "store.db").touch()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.record(fake_measurement(1.5), "darts", SPACE_CONFIG, "a")
    assert lookup(store, "a") is not None


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("{tmp}", "a folder, not a file"),
        ("{tmp}/a-file/store.db", "cannot be created: {tmp}/a-file is a file"),
        pytest.param("/sys/store.db", "cannot be created in /sys (Permission denied)",
                     marks=pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")),
    ],
)  # fmt: skip
def test_a_store_that_cannot_be_created_is_refused_naming_the_url_and_nothing_is_made(
    tmp_path: Path, where: str, problem: str
) -> None:
    (tmp_path / "a-file").write_text("kept\n")
    url = f"sqlite:///{where.format(tmp=tmp_path)}"
    with pytest.raises(UserError) as refused:
        Store(url)
    assert str(refused.value) == f"database {url!r}: {problem.format(tmp=tmp_path)}; {SQLITE_ACCEPTED}"
    assert os.listdir(tmp_path) == ["a-file"] and (tmp_path / "a-file").read_text() == "kept\n"


@pytest.mark.slow  # 18 s on the loaded 2-core host, exports and simulates 3 networks
def test_a_flagged_measurement_keeps_its_rounds_is_left_out_of_training_and_collected_again(db_url: str) -> None:
    from backends import TimingProtocol, get_target
    from ehdnas.pipeline.dataset import load_dataset
    from ehdnas.pipeline.measure import collect
    from ehdnas.spaces import get_space

    runner, space, store = (
        get_target("systolic-edge32"),
        get_space("darts", {"layers": 3, "channels": 4}),
        Store(db_url),
    )
    key = MeasurementKey.of(runner, space)
    assert collect(runner, space, 2, 0, TimingProtocol(), store).measured == 2
    (arch, clean), _ = store.measurements(key)
    noisy = dataclasses.replace(
        clean, samples_ms=(1.0, 9.0, 1.1), rounds=(1, 1, 1), kept_rounds=(0, 2), cpu_share=(0.9, 0.2, 0.9), flagged=True
    )
    store.record(noisy, space.name, key.space_config, arch, replace=True)
    assert store.lookup(key, arch) == noisy and store.lookup(key, arch).kept_samples() == [1.0, 1.1]
    data = load_dataset(store, space, key)
    assert len(data) == 1 and arch not in data.archs and data.meta["flagged_skipped"] == 1
    report = collect(runner, space, 2, 0, TimingProtocol(), store)
    assert (report.measured, report.remeasured) == (1, 1) and not store.lookup(key, arch).flagged
    assert len(load_dataset(store, space, key)) == 2
