"""A search job's progress and message from its events and ticks (`server.execute.SearchProgress`)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import psutil
from pytest import approx

from backends import get_target
from ehdnas.core.events import tick
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space
from server.execute import SearchProgress
from tests.conftest import TOKEN
from tests.pipeline.test_predictors import store_latencies
from tests.server.test_server import TINY, submit


def _darts_run(epochs: int = 2, steps: int = 3) -> list[dict]:
    """The events of a darts search that makes its predictor first: ticks between the per-epoch records."""
    events = [tick("predictor-measure", i, 4, f"predictor: measured {i}/4") for i in range(1, 5)]
    events += [tick("predictor-train", e / 100, 2, f"predictor: training mlp (epoch {e}/100)") for e in (1, 50, 100)]
    events += [tick("predictor-train", 2, 2, "predictor: trained lut (2/2 kinds)")]
    events += [{"stage": "predictor", "kind": "mlp", "measurements": 4, "test_mape": 3.21, "path": "p.pt"}]
    for stage, count in (("search", epochs), ("retrain", 1)):
        for e in range(count):
            for s in range(1, steps + 1):
                message = f"{stage} epoch {e + 1}/{count}, step {s}/{steps}"
                events.append(tick(stage, e + s / steps, count, message))
            events.append({"stage": stage, "epoch": e + 1, "epochs": count})
    return [*events, {"stage": "done"}]


def test_ticks_move_the_fraction_forward_and_set_the_message() -> None:
    track = SearchProgress({"search": 2, "retrain": 1})
    seen = [(event, *track(event)) for event in _darts_run()]
    fractions = [fraction for _, fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    ticked = [fraction for event, fraction, _ in seen if event.get("tick")]
    assert all(a < b for a, b in zip(ticked, ticked[1:]))  # every tick moves it
    for event, _, message in seen:
        if event.get("tick"):
            assert message == event["message"]
    by_message = {message: fraction for _, fraction, message in seen}
    # Making the predictor is the job's first fifth: measuring, then training; the search fills the rest.
    assert by_message["predictor: measured 2/4"] == approx(0.2 * 0.8 * 0.5)
    assert by_message["predictor: training mlp (epoch 50/100)"] == approx(0.2 * (0.8 + 0.2 * 0.25))
    assert by_message["predictor: mlp from 4 measurements, test MAPE 3.2%"] == 0.2
    assert by_message["search epoch 2/2, step 3/3"] == by_message["search 2/2"] == approx(0.2 + 0.8 * 2 / 3)
    assert by_message["retrain epoch 1/1, step 1/3"] == approx(0.2 + 0.8 * (2 + 1 / 3) / 3)


def test_without_a_predictor_to_make_the_search_is_the_whole_job_and_a_sweep_names_its_run() -> None:
    track = SearchProgress({"search": 2, "retrain": 1}, runs=2)
    assert track({"stage": "sweep", "index": 2, "count": 2, "lambda": 0.5}) == (0.5, "run 2/2: sweep")
    fraction, message = track(tick("search", 1.5, 2, "search epoch 2/2, step 2/4"))
    assert (fraction, message) == (approx(0.5 + 0.5 * 1.5 / 3), "run 2/2: search epoch 2/2, step 2/4")
    assert track(tick("retrain", 7, 1, "retrain epoch 1/1, step 9/9"))[0] == 1.0  # never past its stage
    assert track(tick("finish", 0, 1, "measuring the result"))[1] == "run 2/2: measuring the result"
    # A tick counts in its own units: a quarter of a one-unit stage is a quarter of it.
    assert SearchProgress({"sample": 1})(tick("sample", 25, 100, "sampled 25/100")) == (0.25, "sampled 25/100")


def test_a_search_job_shows_its_predictor_training_and_stores_no_tick(launch, tmp_path: Path) -> None:
    samples = 200  # already stored: the job trains its predictor at once, long enough to be watched
    runner, space = get_target("systolic-edge32"), get_space("darts", TINY)
    store_latencies(Store(f"sqlite:///{tmp_path / 'store.db'}"), runner, space, space.sample_many(samples, 0))
    server = launch()
    client = server.client(TOKEN)
    spec = {"target": "systolic-edge32", "space_options": TINY, "auto_predictor": True, "auto_samples": samples,
            "epochs": 1, "retrain_epochs": 1, "batch_size": 256}  # fmt: skip
    job_id = submit(client, "search", **spec)["id"]
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # until the predictor is saved (its event), watching the job's row
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        assert job["status"] in ("queued", "running"), job
        if not seen or seen[-1] != (job["progress"], job["message"]):
            seen.append((job["progress"], job["message"]))
        events = [e["data"] for e in client.get(f"/v1/jobs/{job_id}/events").json()]
        if any(e["stage"] == "predictor" for e in events):
            break
        time.sleep(0.1)
    else:
        workers = [" ".join(c.cmdline()[-2:]) for c in psutil.Process(server.process.pid).children(recursive=True)]
        log = server.log.read_text()
        with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:  # the row itself, past the server
            row = db.execute("SELECT status, progress, message FROM jobs WHERE id = ?", (job_id,)).fetchone()
        raise AssertionError(f"no predictor event in 240 s: {seen}; the row: {row}; processes {workers}; log:\n{log}")
    client.post(f"/v1/jobs/{job_id}/cancel").raise_for_status()
    training = [(fraction, message) for fraction, message in seen if message.startswith("predictor: training mlp (")]
    assert len(training) >= 2, seen  # the row moves while the predictor trains (writes are at most 2 a second)
    assert all(0 <= fraction <= 0.2 for fraction, _ in training), seen  # the job's first fifth
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions), seen
    assert [e["stage"] for e in events] == ["queued", "started", "predictor"]  # ticks are not events
    assert events[-1]["kind"] in ("mlp", "lut") and events[-1]["measurements"] == samples


def test_a_message_that_comes_too_soon_is_written_when_its_time_is_up_not_dropped() -> None:
    from server.worker import PROGRESS_EVERY_S, _Reporter

    class Jobs:
        def __init__(self) -> None:
            self.rows: list[tuple] = []

        def report(self, job_id: int, worker: str, fraction: float, message: str) -> bool:
            self.rows.append((fraction, message))
            return True

        def event(self, job_id: int, record: dict) -> None:
            self.rows.append(("event", record["stage"]))

    jobs = Jobs()
    reporter = _Reporter(jobs, 1, "w")  # type: ignore[arg-type]
    reporter.progress(0.1, "search epoch 1/5, step 1/9")
    reporter.progress(0.2, "search epoch 1/5, step 2/9")  # too soon: waits
    reporter.progress(0.25, "search epoch 1/5: deriving, evaluating, measuring")  # replaces the one waiting
    assert jobs.rows == [(0.1, "search epoch 1/5, step 1/9")]
    time.sleep(PROGRESS_EVERY_S * 1.5)  # and nothing reports for a while: it lands all the same
    assert jobs.rows[1:] == [(0.25, "search epoch 1/5: deriving, evaluating, measuring")]
    reporter.event({"stage": "search", "epoch": 1, "epochs": 5})
    reporter.progress(0.3, "search epoch 2/5, step 1/9")  # too soon: waits
    reporter.progress(1.0, "done")  # the end: at once, and nothing older after it
    time.sleep(PROGRESS_EVERY_S * 1.5)
    assert jobs.rows[2:] == [("event", "search"), (1.0, "done")]


def test_a_benchmark_jobs_message_says_how_far_tuning_is_between_measured_networks() -> None:
    from backends.tvm_llvm import TUNE_STAGE
    from server.execute import _measuring

    shown: list[tuple[float, str]] = []
    runner = get_target("tvm-llvm")  # tuned by default: it ticks while it tunes each network
    measured = _measuring(runner, lambda fraction, message: shown.append((fraction, message)))
    measured(1, 4, "darts")
    runner.on_event(tick(TUNE_STAGE, 8, 256, "tuning 12 kernels: 8/256 trials, about 9 min left"))
    assert shown == [(0.25, "measured 1/4 darts"), (0.25, "tuning 12 kernels: 8/256 trials, about 9 min left")]
