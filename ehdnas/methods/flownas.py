"""FlowNAS on ehdnas: search a RAFT-style estimator's encoder under a latency budget on a named target.

teacher (the estimator with the space's largest encoder, trained) -> supernet
(weight sharing: the largest, the smallest and random sub-networks each step,
one flow head for all, their features aligned to the teacher's) -> evolution
(fitness = validation EPE + the distance of the encoder's features to the
teacher's; constraint = the encoder's latency on the target, predicted or
measured) -> the chosen encoder with its own BatchNorm statistics, its test
EPE, exported and measured on the target, and the Pareto plot of the last
population. FlowNAS constrained a resource count; the constraint here is the
target's latency, which FlowNAS itself did not enforce.

Every stage is saved in the result folder (`teacher.pt`, `supernet.pt`), keyed
by the settings it depends on: a search run again resumes after the last
finished stage, and one with another budget, target or evolution setting
reuses both trained stages.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ehdnas.core.errors import UserError
from ehdnas.core.events import Events, throttled, tick
from ehdnas.core.settings import SettingError, check_fields, setting
from ehdnas.methods.evolution import (
    EVOLUTION_HELP,
    EvolutionResult,
    EvolutionSettings,
    check_evolution,
    evolution_settings,
    evolve,
    spelled_out,
)
from ehdnas.methods.latency import budget_setting, latency_function, source_setting
from ehdnas.methods.registry import register_method
from ehdnas.methods.saved import RESULT, saved_result, saved_state
from ehdnas.pipeline.follow import FOLLOW_WEIGHT, Follower
from ehdnas.report.plots import plot_flow_pareto
from ehdnas.spaces import get_space
from ehdnas.spaces.flownas import EncoderArch, FlowNASSpace
from ehdnas.supernets.flownas import FlowNASSupernet, sandwich
from ehdnas.tasks.flow_data import FlowData, FlowSplit, check_flow_data_spec, load_flow_data
from ehdnas.tasks.flow_model import (
    FlowHead,
    FlowModel,
    FlowTrainSettings,
    default_device,
    evaluate_epe,
    raft_optimizer,
    sequence_loss,
    train_teacher,
)

# The settings each trained stage depends on: another budget, target or evolution reuses both stages.
TEACHER_KEYS = ("space_options", "data", "pairs", "teacher_epochs", "batch_size", "lr", "iterations", "seed")
SUPERNET_KEYS = (*TEACHER_KEYS, "epochs", "distill", "random_subnets")


@dataclass(frozen=True)
class FlowSearchSettings:
    """Everything that determines a FlowNAS search; stored with its stages and result.

    The `setting(...)` fields are the method's options on both faces; the others are the recipe, fixed here.
    """

    target: str = "ort-cpu"
    target_options: dict[str, Any] = field(default_factory=dict)
    space_options: dict[str, Any] = field(default_factory=dict)
    data: str = setting("photos", help="Flow data: photos (embedded), chairs:DIR or sintel:DIR.")
    pairs: list[int] = setting(
        [], item_ge=1, help="TRAIN,VAL,TEST pairs of the flow data (photos: made; folders: at most) [320,48,48]."
    )
    latency_budget_ms: float | None = budget_setting()
    latency: str = source_setting()
    follow: bool = setting(
        True, help="latency_from 'predictor': measure each generation's best and neighbours; correct the predictor."
    )
    follow_neighbours: int = setting(4, ge=0, le=64, help="One-edge neighbours measured with each derived network.")
    teacher_epochs: int = setting(10, ge=1, help="Teacher training epochs.")
    epochs: int = setting(10, ge=1, help="Supernet training epochs.")
    batch_size: int = setting(8, ge=1, le=65_536, help="Batch size of the teacher and the supernet.")
    lr: float = 1e-3
    iterations: int = 6  # update iterations of the flow head in training
    eval_iterations: int = 12  # in validation and test
    distill: float = 1.0  # weight of the feature alignment in training, and of the feature distance in the fitness
    random_subnets: int = 2  # sandwich rule: the largest, the smallest and this many random sub-networks per step
    calibration_batches: int = 4  # training batches that recompute a sub-network's BatchNorm statistics
    evolution: dict[str, Any] = setting({}, help=EVOLUTION_HELP)
    seed: int = setting(0, ge=0, help="Seed of the data, the training and the evolution.")
    method: str = "flownas"

    def __post_init__(self) -> None:
        object.__setattr__(self, "evolution", spelled_out(self.evolution))

    def check(self) -> None:
        if self.latency_budget_ms is None:
            raise SettingError("latency_budget_ms", "a flownas search needs a latency budget (ms) on the target")
        check_fields(self)
        if self.pairs and len(self.pairs) != 3:
            raise SettingError("pairs", "three counts (TRAIN, VAL, TEST), or none for the defaults")
        try:
            check_flow_data_spec(self.data)
        except UserError as err:
            raise SettingError("data", str(err)) from None
        check_evolution(self.evolution)

    def evolution_settings(self) -> EvolutionSettings:
        return evolution_settings(self.evolution)

    def train_settings(self, epochs: int) -> FlowTrainSettings:
        return FlowTrainSettings(
            epochs=epochs, batch_size=self.batch_size, lr=self.lr, iterations=self.iterations,
            eval_iterations=self.eval_iterations, seed=self.seed,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def stage_key(self, keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k in keys}


def _stage(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """A stage saved under the same settings `key`, or None."""
    state = saved_state(path, default_device())
    if state is None:
        return None
    if state.get("key") != key:
        raise UserError(f"{path} was trained with other settings; choose another --out or remove it")
    return state


def _save(path: Path, state: dict[str, Any]) -> None:
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)  # never a half-written stage


def teacher_stage(
    settings: FlowSearchSettings, space: FlowNASSpace, data: FlowData, out: Path, on_event: Events
) -> FlowModel:
    """The trained teacher, from `out/teacher.pt` when this search made it already."""
    path, key = out / "teacher.pt", settings.stage_key(TEACHER_KEYS)
    state = _stage(path, key)
    if state is None:
        teacher = train_teacher(space, data, settings.train_settings(settings.teacher_epochs), on_event)
        _save(path, {"key": key, "model": teacher.state_dict()})
        return teacher
    on_event({"stage": "resume", "what": "teacher"})
    teacher = FlowModel(space.build(space.largest()), FlowHead(space.config.out_dim)).to(default_device())
    teacher.load_state_dict(state["model"])
    return teacher.eval()


def train_supernet(
    settings: FlowSearchSettings, space: FlowNASSpace, data: FlowData, teacher: FlowModel, on_event: Events
) -> tuple[FlowNASSupernet, FlowHead]:
    """Weight-sharing training, started from the teacher's weights (its encoder is the largest sub-network).

    Each step sums, over the sandwich rule's sub-networks, RAFT's sequence loss and `distill` times the mean
    squared distance of the sub-network's features to the teacher's encoder features (feature alignment).
    `on_event` has a tick after every step (stage "supernet"; the caller throttles them).
    """
    device = default_device()
    supernet = FlowNASSupernet(space.config, settings.seed).to(device)
    supernet.net.load_state_dict(teacher.encoder.state_dict())
    head = FlowHead(space.config.out_dim).to(device)
    head.load_state_dict(teacher.head.state_dict())
    teacher.eval()
    generator, rng = torch.Generator().manual_seed(settings.seed), np.random.default_rng(settings.seed)
    recipe = settings.train_settings(settings.epochs)
    parameters = [*supernet.parameters(), *head.parameters()]
    steps = -(-len(data.train) // settings.batch_size)
    optimizer, schedule = raft_optimizer(parameters, recipe, steps)
    size = (data.height, data.width)
    for epoch in range(settings.epochs):
        started, losses = time.perf_counter(), []
        train = data.train_split(epoch)
        supernet.train()
        head.train()
        where = f"supernet epoch {epoch + 1}/{settings.epochs}"
        for step, rows in enumerate(torch.randperm(len(train), generator=generator).split(settings.batch_size)):
            images = train.images[rows].to(device)  # (b, 2, 3, H, W)
            x = torch.cat((images[:, 0], images[:, 1]))  # (2b, 3, H, W): both frames through one encoder pass
            flow, valid = train.flow[rows].to(device), train.valid[rows].to(device)
            with torch.no_grad():
                target = teacher.encoder(x)  # (2b, D, H/8, W/8)
            optimizer.zero_grad()
            total = 0.0
            for arch in sandwich(space, rng, settings.random_subnets):
                features = supernet(x, arch)  # (2b, D, H/8, W/8)
                f1, f2 = features.chunk(2)
                loss = sequence_loss(head(f1, f2, settings.iterations, size), flow, valid)
                loss = loss + settings.distill * F.mse_loss(features, target)
                loss.backward()  # one sub-network's graph at a time: the gradients add up
                total += loss.item()
            torch.nn.utils.clip_grad_norm_(parameters, recipe.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(total)
            on_event(tick("supernet", epoch + (step + 1) / steps, settings.epochs, f"{where}, step {step + 1}/{steps}"))
        on_event(
            {
                "stage": "supernet",
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "loss": float(np.mean(losses)),  # summed over the step's sub-networks
                "epoch_s": time.perf_counter() - started,
            }
        )
    return supernet.eval(), head.eval()


def supernet_stage(
    settings: FlowSearchSettings, space: FlowNASSpace, data: FlowData, teacher: FlowModel, out: Path, on_event: Events
) -> tuple[FlowNASSupernet, FlowHead]:
    """The trained supernet and flow head, from `out/supernet.pt` when this search made them already."""
    path, key = out / "supernet.pt", settings.stage_key(SUPERNET_KEYS)
    state = _stage(path, key)
    if state is None:
        supernet, head = train_supernet(settings, space, data, teacher, on_event)
        _save(path, {"key": key, "supernet": supernet.state_dict(), "head": head.state_dict()})
        return supernet, head
    on_event({"stage": "resume", "what": "supernet"})
    device = default_device()
    supernet, head = FlowNASSupernet(space.config).to(device), FlowHead(space.config.out_dim).to(device)
    supernet.load_state_dict(state["supernet"])
    head.load_state_dict(state["head"])
    return supernet.eval(), head.eval()


@dataclass
class Fitness:
    """FlowNAS's fitness of a sub-network: validation EPE + distill x feature distance to the teacher (lower wins).

    Each sub-network gets its own BatchNorm statistics from `calibration_batches` training batches first.
    `scores` keeps both parts of every architecture evaluated, by its text.
    """

    supernet: FlowNASSupernet
    head: FlowHead
    teacher: FlowModel
    data: FlowData
    settings: FlowSearchSettings
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The same for every architecture: calibration inputs, validation inputs and the teacher's features of them.
        self.calibration = self._frames(self.data.train, self.settings.calibration_batches)
        self.val_frames = self._frames(self.data.val)
        with torch.no_grad():
            self.teacher_features = [self.teacher.encoder(x) for x in self.val_frames]

    def _frames(self, split: FlowSplit, batches: int | None = None) -> list[torch.Tensor]:
        """Both frames of `split`'s pairs, `batch_size` pairs at a time: [(2b, 3, H, W)] on the supernet's device."""
        device, b = next(self.supernet.parameters()).device, self.settings.batch_size
        end = len(split) if batches is None else min(len(split), b * batches)
        return [split.images[i : i + b].flatten(0, 1).to(device) for i in range(0, end, b)]

    def encoder(self, arch: EncoderArch) -> torch.nn.Module:
        """The sub-network as a standalone encoder with its BatchNorm statistics recomputed."""
        return self.supernet.calibrate_bn(arch, self.calibration)

    def epe(self, encoder: torch.nn.Module, split: FlowSplit) -> float:
        """EPE on `split` of a standalone encoder (from `encoder`) with the shared flow head."""
        s = self.settings
        return evaluate_epe(FlowModel(encoder, self.head), split, s.eval_iterations, s.batch_size)

    def __call__(self, arch: EncoderArch) -> float:
        encoder = self.encoder(arch)
        s = self.settings
        val_epe = self.epe(encoder, self.data.val)
        with torch.no_grad():
            distances = [F.mse_loss(encoder(x), t).item() for x, t in zip(self.val_frames, self.teacher_features)]
        distance = float(np.mean(distances))
        self.scores[self.supernet.space.to_text(arch)] = {"val_epe": val_epe, "feature_distance": distance}
        return val_epe + s.distill * distance


def run_flow_search(
    settings: FlowSearchSettings, predictor: Any, store: Any, out: Path, on_event: Events
) -> dict[str, Any]:
    """Teacher, supernet, evolution under the budget, the chosen encoder measured; writes `out`, returns the result."""
    from backends import TimingProtocol, get_target
    from ehdnas.pipeline.export import export_model

    settings.check()
    on_event = throttled(on_event)  # every stage ticks after each step or candidate
    space = get_space("flownas", settings.space_options)
    assert isinstance(space, FlowNASSpace)
    runner = get_target(settings.target, settings.target_options)
    finished = out / RESULT
    previous = saved_result(finished) or {}
    if previous.get("settings") == settings.to_dict():  # this exact search already ran to the end
        on_event({"stage": "done", "reused": str(finished)})
        return previous
    follower = None
    if settings.latency == "predictor" and settings.follow:
        follower = Follower(predictor, runner, space, store, settings.follow_neighbours, FOLLOW_WEIGHT, settings.seed)
    latency = (
        follower.predict if follower is not None
        else latency_function(settings.latency, space, runner, predictor, store)
    )  # fmt: skip
    floor_ms = latency(space.smallest())
    if floor_ms > settings.latency_budget_ms:  # said before any training, not after it
        raise UserError(
            f"the smallest encoder takes {floor_ms:.4g} ms on {runner.name} ({settings.latency}), above the "
            f"{settings.latency_budget_ms:g} ms budget: raise --latency-budget or lower the input size"
        )
    c = space.config
    counts = dict(zip(("train", "val", "test"), settings.pairs))
    data = load_flow_data(settings.data, c.input_height, c.input_width, seed=settings.seed, **counts)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    teacher = teacher_stage(settings, space, data, out, on_event)
    teacher_s = time.perf_counter() - started
    supernet, head = supernet_stage(settings, space, data, teacher, out, on_event)
    supernet_s = time.perf_counter() - started - teacher_s
    fitness = Fitness(supernet, head, teacher, data, settings)

    generations = settings.evolution_settings().generations

    def generation(record: dict[str, float]) -> None:
        on_event({"stage": "evolution", "generations": generations, **record})

    def step(done: float, message: str) -> None:
        on_event(tick("evolution", done, generations, message))

    evolution_started = time.perf_counter()
    found: EvolutionResult = evolve(
        space, fitness, latency, settings.latency_budget_ms, settings.evolution_settings(),
        np.random.default_rng(settings.seed), generation, step, follower.observe if follower is not None else None,
    )  # fmt: skip
    search_s = time.perf_counter() - evolution_started
    on_event(tick("finish", 0, 1, f"testing the chosen encoder, exporting it and measuring it on {runner.name}"))
    best = found.best
    encoder = fitness.encoder(best.arch)
    test_epe = fitness.epe(encoder, data.test)
    teacher_test_epe = evaluate_epe(teacher, data.test, settings.eval_iterations, settings.batch_size)
    torch.save(encoder.state_dict(), out / "encoder.pt")
    (out / "encoder.txt").write_text(best.arch.to_text() + "\n")
    exported = export_model(encoder.cpu(), space.input_shape, out / "encoder.onnx")
    measurement = runner.measure(exported, TimingProtocol())
    teacher_onnx = export_model(teacher.encoder.cpu(), space.input_shape, out / "teacher.onnx")
    teacher_ms = runner.measure(teacher_onnx, TimingProtocol())
    plot_flow_pareto(found.population, fitness.scores, settings.latency_budget_ms, out / "pareto.png")
    measured_ms = measurement.latency_ms.median
    result = {
        "encoder": best.arch.to_text(),
        "val_epe": fitness.scores[best.arch.to_text()]["val_epe"],
        "feature_distance": fitness.scores[best.arch.to_text()]["feature_distance"],
        "fitness": best.fitness,
        "test_epe": test_epe,
        "latency_budget_ms": settings.latency_budget_ms,
        "constraint_latency_ms": best.latency_ms,  # as the search saw it (settings.latency)
        "measured_latency_ms": measurement.latency_ms.to_dict(),
        "meets_budget_measured": measured_ms <= settings.latency_budget_ms,
        "teacher": {"encoder": space.largest().to_text(), "test_epe": teacher_test_epe,
                    "measured_latency_ms": teacher_ms.latency_ms.median},
        "population": [
            {"encoder": c.arch.to_text(), "latency_ms": c.latency_ms, **fitness.scores[c.arch.to_text()]}
            for c in found.population
        ],
        "evolution": {"evaluated": len(found.seen), "drawn": found.drawn, "rejected": found.rejected,
                      "rejected_share": found.rejected / found.drawn, "history": found.history},
        "cost": {"teacher_s": teacher_s, "supernet_s": supernet_s, "search_s": search_s,
                 "total_s": time.perf_counter() - started},
        "target": runner.name,
        "target_config": runner.config_dict(),
        "host": measurement.host,
        "data": data.name,
        "space_config": space.config_dict(),
        "settings": settings.to_dict(),
    }  # fmt: skip
    finished.write_text(json.dumps(result, indent=2) + "\n")
    on_event({"stage": "done", "test_epe": test_epe, "measured_ms": measured_ms})
    return result


@register_method
class FlowNasMethod:
    """FlowNAS: a RAFT-style estimator's encoder, by evolution over a weight-sharing supernet, under a budget."""

    name = "flownas"
    summary = "FlowNAS: an optical-flow encoder by evolution over a supernet, under a latency budget on the target"
    settings = FlowSearchSettings
    spaces = ("flownas",)
    searches_unmeasured = False  # its budget and its result are measured on the target

    def space(self, name: str, space_options: dict[str, Any]) -> FlowNASSpace:
        space = get_space(name, space_options)
        assert isinstance(space, FlowNASSpace)
        return space

    def uses_predictor(self, settings: FlowSearchSettings) -> bool:
        return settings.latency == "predictor"

    def stages(self, settings: FlowSearchSettings) -> tuple[dict[str, int], int]:
        generations = settings.evolution_settings().generations
        return {"flow-train": settings.teacher_epochs, "supernet": settings.epochs, "evolution": generations}, 1

    def run(
        self, settings: FlowSearchSettings, predictor: Any, store: Any, out: Path, on_event: Events
    ) -> dict[str, Any]:
        return run_flow_search(settings, predictor, store, out, on_event)
