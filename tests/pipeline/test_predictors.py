"""Making a search's predictor says what it is doing: measuring, then training, then what it saved."""

from __future__ import annotations

from pathlib import Path

from backends import LatencyStats, Measurement, get_target
from ehdnas.core.events import is_tick
from ehdnas.pipeline.predictors import ensure_predictor
from ehdnas.pipeline.store import Store
from ehdnas.spaces import get_space

TINY = {"layers": 3, "channels": 4, "input_size": 8}


def store_latencies(store: Store, runner, space, archs) -> None:  # noqa: ANN001
    """Stored as if measured by `runner` here: a latency that grows with the choice indices."""
    for arch in archs:
        median = 0.01 * (1 + sum(space.encode(arch)))
        store.record(
            Measurement(
                target=runner.name, target_config=runner.config_dict(), host=runner.host(),
                model={"model": "m.onnx", "inputs": []}, latency_ms=LatencyStats.from_samples([median] * 3),
                samples_ms=(median,) * 3, protocol={}, wall_s=0.0, created_at="2026-01-01T00:00:00+00:00",
            ),
            space.name, space.config_dict(), space.to_text(arch),
        )  # fmt: skip


def test_making_a_predictor_ticks_its_measuring_then_its_training_then_says_what_it_saved(
    db_url: str, tmp_path: Path
) -> None:
    runner, space, store = get_target("systolic-edge32"), get_space("darts", TINY), Store(db_url)
    samples = 60
    store_latencies(store, runner, space, space.sample_many(samples, 0)[3:])  # 3 are left to measure
    events: list[dict] = []
    predictor = ensure_predictor(runner, space, tmp_path / "p.pt", samples, 0, store, events.append)
    assert predictor is not None and (tmp_path / "p.pt").is_file()
    ticks = [e for e in events if is_tick(e)]
    assert [t["stage"] for t in ticks] == ["predictor-measure"] * 3 + ["predictor-train"] * (len(ticks) - 3)
    measuring, training = ticks[:3], ticks[3:]
    assert [(t["done"], t["total"]) for t in measuring] == [(1, 3), (2, 3), (3, 3)]
    assert measuring[0]["message"].startswith("predictor: measured 1/3 darts#")
    # The training has its own messages, per epoch, and moves forward: mlp's epochs, then lut.
    assert training[0]["message"] == "predictor: training mlp and lut" and training[0]["done"] == 0
    assert training[1]["message"] == "predictor: training mlp (epoch 1/400)"
    assert sum("predictor: training mlp (epoch" in t["message"] for t in training) >= 20
    assert [t["message"] for t in training[-2:]] == ["predictor: trained mlp (1/2 kinds)",
                                                     "predictor: trained lut (2/2 kinds)"]  # fmt: skip
    done = [t["done"] for t in training]
    assert done == sorted(done) and done[-1] == 2 == training[-1]["total"]
    (saved,) = [e for e in events if not is_tick(e)]
    assert events[-1] == saved and saved["stage"] == "predictor" and saved["kind"] in ("mlp", "lut")
    assert saved["measurements"] == samples and saved["path"] == str(tmp_path / "p.pt") and saved["test_mape"] > 0
    events.clear()
    ensure_predictor(runner, space, tmp_path / "p.pt", samples, 0, store, events.append)
    assert events == []  # there already: nothing to make, nothing said
