"""EH-DNAS: differentiable architecture search with a learned latency term, end to end, on a space that has a
DNAS supernet (darts, nb201).

search (first-order DARTS on a train/validation split of the training data,
loss = task + lambda * hardware term of softmax(alpha)) -> derive the genotype ->
retrain it from scratch -> test accuracy -> export ONNX -> measure on the real
target, next to the predictor's estimate. lambda = 0 is the hardware-agnostic
DARTS baseline, through the same code.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
from ehdnas.methods.registry import register_method
from ehdnas.methods.saved import RESULT, STATES, saved_result, saved_state
from ehdnas.pipeline.export import export_model
from ehdnas.pipeline.follow import FOLLOW_WEIGHT, Follower
from ehdnas.pipeline.store import Store
from ehdnas.report.plots import plot_search, plot_tradeoff
from ehdnas.spaces import SearchSpace, get_space
from ehdnas.spaces.binary_ops import memory_bits, reconstruction_loss
from ehdnas.supernets.dnas import DnasSupernet, dnas_supernet
from ehdnas.tasks.images import ImageData, check_data_spec, load_data
from perf_models import HardwareLoss, Predictor
from perf_models.loss import FORMS

CHECKPOINT = STATES[0]
Batch = tuple[torch.Tensor, torch.Tensor]  # images, labels


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines an EH-DNAS search; stored with its checkpoint and result.

    The `setting(...)` fields are the method's options on both faces (flags, spec fields); the others are
    DARTS's recipe, fixed here.
    """

    target: str = "ort-cpu"
    target_options: dict[str, Any] = field(default_factory=dict)
    space: str = "darts"  # the space searched, one of the method's spaces
    space_options: dict[str, Any] = field(default_factory=dict)
    data: str = setting(
        "digits", help="Training data: digits (embedded), cluttered (embedded, harder: digits among clutter), "
        "cifar10:DIR or folder:DIR.",
    )  # fmt: skip
    lambdas: list[float] = setting(
        [0.5], item_ge=0, flag="--lambda",
        help="Weight of the hardware term (0 = plain DARTS); several, comma-separated, run a sweep (lambda 0 added).",
    )  # fmt: skip
    loss_form: str = setting("eh-dnas", choices=FORMS, help="Hardware term: eh-dnas, add#linear, mul#log or hinge.")
    epochs: int = setting(25, ge=1, help="Search epochs.")
    batch_size: int = setting(64, ge=1, le=65_536, help="Batch size of the search and the retraining.")
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    a_lr: float = setting(
        0.0, ge=0, le=10, public="arch_lr",
        help="Adam learning rate of alpha; 0: DARTS's travel (3e-4 over ~20k steps) spread over this run's alpha steps",
    )  # fmt: skip
    a_weight_decay: float = 1e-3
    warmup: float = setting(
        0.3, ge=0, le=0.9, help="Share of the search's steps that train weights only before alpha moves (PC-DARTS 0.3)"
    )
    skip_cap: int = setting(
        2,
        ge=0,
        le=8,
        help="At most this many skip_connect in the derived normal cell (nb201: the cell; P-DARTS); 8: no cap.",
    )
    follow: bool = setting(
        True, help="Measure each epoch's derived network and neighbours on the target; correct the predictor there."
    )
    follow_neighbours: int = setting(4, ge=0, le=64, help="One-edge neighbours measured with each derived network.")
    target_ms: float = setting(0.0, ge=0, help="Latency budget of the hinge form (ms): the hinge needs one.")
    gumbel_tau: float = setting(
        0.0, ge=0, le=1_000, help="> 0: Gumbel-softmax sampling of the op weights at this temperature."
    )
    retrain_epochs: int = setting(30, ge=1, help="Epochs to retrain the result.")
    dcp_mu: float = setting(0.2, ge=0, help="Binary spaces: weight of the 1-bit weights' reconstruction loss.")
    seed: int = setting(0, ge=0, help="Seed of the split, the initialisations and the retraining.")
    method: str = "eh-dnas"  # the registered method these settings are for (stored with the result)

    @property
    def lam(self) -> float:
        """This search's hardware-term weight (a sweep runs one search per lambda)."""
        return self.lambdas[0]

    def check(self) -> None:
        check_fields(self)
        if not self.lambdas:
            raise SettingError("lambdas", "needs at least one value")
        if (self.loss_form == "hinge") != (self.target_ms > 0):
            why = "the hinge form needs a latency budget in ms, above 0" if self.target_ms == 0 else (
                f"a latency budget applies to loss_form hinge only, not to {self.loss_form}")  # fmt: skip
            raise SettingError("target_ms", why)
        try:
            check_data_spec(self.data)
        except UserError as err:
            raise SettingError("data", str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _batches(x: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator):
    order = torch.randperm(len(x), generator=generator)
    for rows in order.split(size):
        yield x[rows], y[rows]


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, size: int = 256, **forward: Any) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x[i : i + size], **forward).argmax(1) == y[i : i + size]).sum()) for i in range(0, len(x), size)
        )
    return correct / len(x)


def _one_hot(space: SearchSpace, genotype: Any) -> torch.Tensor:
    return torch.as_tensor(np.stack(space.one_hot(genotype)))  # (D, K): darts (28, 8), nb201 (6, 5)


def _binary(space: SearchSpace) -> bool:
    """Whether the space's networks are 1-bit (the darts space's DCP-NAS variant; no other space has one)."""
    return bool(getattr(space.config, "binary", False))


FOLLOW_CHECKS = 4  # times per epoch the followed search checks whether its derived network changed
ARCH_TRAVEL = 6.0  # DARTS's alpha learning rate times its architecture steps: 3e-4 x ~20k (50 epochs of 391)


@dataclass(frozen=True)
class Schedule:
    """How a search's steps are spent, from the run's size rather than constants tuned for 20k CIFAR steps."""

    steps_per_epoch: int
    warmup_steps: int  # weight-only steps before alpha moves (PC-DARTS, DARTS-)
    arch_lr: float  # Adam's step on alpha: ARCH_TRAVEL over the steps that move it, unless set
    follow_every: int  # steps between checks of the derived network (measured when it changed)

    @classmethod
    def of(cls, settings: SearchSettings, rows: int) -> Schedule:
        """The schedule of a search whose alpha and weights each train on `rows` images."""
        per_epoch = max(1, -(-rows // settings.batch_size))
        total = per_epoch * settings.epochs
        warmup = min(int(settings.warmup * total), total - 1)
        lr = settings.a_lr or ARCH_TRAVEL / (total - warmup)
        return cls(per_epoch, warmup, lr, max(1, per_epoch // FOLLOW_CHECKS))


def weight_optimizer(settings: SearchSettings, supernet: DnasSupernet) -> tuple[torch.optim.Optimizer, Any]:
    """DARTS's weight optimizer (SGD with momentum) and its cosine schedule over the search epochs."""
    w_opt = torch.optim.SGD(
        supernet.weight_parameters(), settings.w_lr, momentum=settings.w_momentum, weight_decay=settings.w_weight_decay
    )
    return w_opt, torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, settings.epochs, eta_min=settings.w_lr_min)


def arch_optimizer(
    settings: SearchSettings, schedule: Schedule, parameters: list[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """DARTS's architecture optimizer: Adam with beta1 0.5, at the schedule's learning rate."""
    return torch.optim.Adam(parameters, schedule.arch_lr, betas=(0.5, 0.999), weight_decay=settings.a_weight_decay)


def hardware_loss(settings: SearchSettings, predictor: Predictor, soft_arch: torch.Tensor) -> HardwareLoss:
    """The hardware term, its reference the predicted latency of the starting (uniform) mixture: lambda is unitless."""
    with torch.no_grad():
        ref_ms = float(predictor(soft_arch))
    target_ms = settings.target_ms or None  # the hinge's budget (checked: given with the hinge, and only then)
    return HardwareLoss(predictor, settings.loss_form, settings.lam, ref_ms=ref_ms, target_ms=target_ms)


class EhDnas:
    """EH-DNAS's step: first-order DARTS, alpha trained on validation data with the hardware term added."""

    def __init__(
        self,
        settings: SearchSettings,
        schedule: Schedule,
        space: SearchSpace,
        predictor: Predictor,
        generator: torch.Generator,
        device: Any,
    ) -> None:
        self.supernet = dnas_supernet(space, generator).to(device)
        self.w_opt, self.schedule = weight_optimizer(settings, self.supernet)
        self.a_opt = arch_optimizer(settings, schedule, [self.supernet.alpha])
        self.hardware = hardware_loss(settings, predictor, self.supernet.soft_arch())
        self.grad_clip = settings.grad_clip

    def step(self, train: Batch, val: Batch, tau: float | None, arch: bool) -> tuple[float, float]:
        """One architecture step (unless warming up: `arch` false), then one weight step; the loss (the
        architecture step's, else the weights') and the seconds spent in the predictor."""
        loss, predictor_s = None, 0.0
        if arch:
            self.a_opt.zero_grad()  # architecture step (first order) on validation data
            task = F.cross_entropy(self.supernet(val[0], tau), val[1])
            t0 = time.perf_counter()
            loss = self.hardware(task, self.supernet.soft_arch())
            predictor_s = time.perf_counter() - t0
            loss.backward()
            self.a_opt.step()
        self.w_opt.zero_grad()  # weight step on training data
        weight_loss = F.cross_entropy(self.supernet(train[0], tau), train[1])
        weight_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), self.grad_clip)
        self.w_opt.step()
        return (loss if loss is not None else weight_loss).item(), predictor_s

    def end_epoch(self) -> dict[str, Any]:
        """Advance the schedules; what this method adds to the epoch's record."""
        self.schedule.step()
        return {}

    def arch_shift(self) -> torch.Tensor | None:
        """What the supernet's alpha is read less of (DCP-NAS's backtracking); EH-DNAS reads alpha as it is."""
        return None

    def train(self) -> None:
        self.supernet.train()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).state_dict() for name in ("supernet", "w_opt", "a_opt", "schedule")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)


def _method(name: str) -> type:
    """The search method's step class: its registered method's `step`."""
    from ehdnas.methods.registry import get_method

    return get_method(name).step


def alpha_summary(probs: torch.Tensor) -> dict[str, float]:
    """How decided the architecture is: the mean over edges of the largest op probability (uniform: 1/K) and of
    the entropy (uniform: ln K; darts's 8 ops: 2.08); probs (D, K)."""
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return {"alpha_max": float(probs.max(-1).values.mean()), "alpha_entropy": float(entropy.mean())}


def search_supernet(
    settings: SearchSettings,
    space: SearchSpace,
    data: ImageData,
    predictor: Predictor,
    out: Path,
    on_event: Events,
    follower: Follower | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """The bilevel search of `settings.method`; checkpoints every epoch into `out` and resumes from there.

    With a `follower`, the search's hardware term reads `follower.predictor`; the derived network is checked
    `FOLLOW_CHECKS` times an epoch and, when it changed, measured and the predictor corrected there.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    half = len(data.train_x) // 2  # DARTS: half of the training data trains weights, half trains alpha
    order = torch.randperm(len(data.train_x), generator=generator)
    train_x, train_y = data.train_x[order[:half]], data.train_y[order[:half]]
    val_x, val_y = data.train_x[order[half:]], data.train_y[order[half:]]

    schedule = Schedule.of(settings, half)
    hardware = follower.predictor if follower is not None else predictor
    method = _method(settings.method)(settings, schedule, space, hardware, generator, data.train_x.device)
    supernet = method.supernet  # the network whose architecture is searched (DCP-NAS: the 1-bit child)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    checkpoint = out / CHECKPOINT
    if (state := saved_state(checkpoint, data.train_x.device)) is not None:
        if state.get("settings") != settings.to_dict() or "method" not in state:
            raise UserError(f"{out} holds a search with other settings; choose another --out or remove {checkpoint}")
        method.load_state_dict(state["method"])
        generator.set_state(state["generator"])
        if follower is not None:
            follower.load_state_dict(state["follower"])
        history, start_epoch = state["history"], len(state["history"])
        on_event({"stage": "resume", "epoch": start_epoch})

    tau = settings.gumbel_tau or None
    steps = schedule.steps_per_epoch  # the weights' half is the shorter one: zip stops with it
    for epoch in range(start_epoch, settings.epochs):
        started, predictor_s, follow_s, losses = time.perf_counter(), 0.0, 0.0, []
        method.train()
        where = f"search epoch {epoch + 1}/{settings.epochs}"
        val_batches = _batches(val_x, val_y, settings.batch_size, generator)
        for i, (train, val) in enumerate(zip(_batches(train_x, train_y, settings.batch_size, generator), val_batches)):
            moving = epoch * schedule.steps_per_epoch + i >= schedule.warmup_steps
            loss, seconds = method.step(train, val, tau, moving)
            losses.append(loss)
            predictor_s += seconds
            phase = "" if moving else " (weights only: warm-up)"
            on_event(tick("search", epoch + (i + 1) / steps, settings.epochs, f"{where}, step {i + 1}/{steps}{phase}"))
            if follower is not None and moving and (i + 1) % schedule.follow_every == 0:  # within the epoch too
                now = time.perf_counter()
                on_event(
                    tick("search", epoch + (i + 1) / steps, settings.epochs, f"{where}: measuring the derived network",
                         lasting=True)
                )  # fmt: skip
                follower.observe(supernet.derive(method.arch_shift(), settings.skip_cap))
                follow_s += time.perf_counter() - now
        on_event(tick("search", epoch + 1, settings.epochs, f"{where}: deriving, evaluating, measuring", lasting=True))
        extra = method.end_epoch()
        shift = method.arch_shift()  # the architecture as the method reads alpha
        genotype = supernet.derive(shift, settings.skip_cap)
        with torch.no_grad():
            probs = supernet.soft_arch(shift=shift)
            record = {
                "stage": "search",
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "loss": float(np.mean(losses)),
                "train_acc": _accuracy(supernet, train_x, train_y, shift=shift),
                "val_acc": _accuracy(supernet, val_x, val_y, shift=shift),
                "predicted_ms_soft": float(hardware(probs)),
                "predicted_ms_derived": float(hardware(_one_hot(space, genotype).to(data.train_x.device))),
                **alpha_summary(probs),
                "genotype": genotype.to_text(),
                "alpha": probs.tolist(),
                "predictor_s": predictor_s,
                **extra,
            }
        if follower is not None:  # measured where the search stands; the next epoch's predictor is right there
            now = time.perf_counter()
            followed = follower.observe(genotype)
            follow_s += time.perf_counter() - now
            record |= {f"follow_{k}": v for k, v in followed.items() if k != "predicted_ms"} | {"follow_s": follow_s}
        record["epoch_s"] = time.perf_counter() - started
        history.append(record)
        state = {
            "settings": settings.to_dict(),
            "method": method.state_dict(),
            "generator": generator.get_state(),
            "history": history,
            **({"follower": follower.state_dict()} if follower is not None else {}),
        }
        torch.save(state, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)  # never a half-written checkpoint
        on_event(record)
    return supernet.derive(method.arch_shift(), settings.skip_cap), history


def retrain(
    settings: SearchSettings, space: SearchSpace, genotype: Any, data: ImageData, on_event: Events
) -> tuple[torch.nn.Module, float]:
    """Train the derived network from scratch on the whole training split; its test accuracy."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = space.build(genotype).to(data.train_x.device)
    optimizer = torch.optim.SGD(
        model.parameters(), settings.w_lr, momentum=settings.w_momentum, weight_decay=settings.w_weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.retrain_epochs)
    steps = math.ceil(len(data.train_x) / settings.batch_size)
    for epoch in range(settings.retrain_epochs):
        model.train()
        where = f"retrain epoch {epoch + 1}/{settings.retrain_epochs}"
        for step, (x, y) in enumerate(_batches(data.train_x, data.train_y, settings.batch_size, generator)):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            if _binary(space):  # 1-bit weights stay close to the real ones they stand for
                loss = loss + settings.dcp_mu * reconstruction_loss(model)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            done = epoch + (step + 1) / steps
            on_event(tick("retrain", done, settings.retrain_epochs, f"{where}, step {step + 1}/{steps}"))
        schedule.step()
        on_event({"stage": "retrain", "epoch": epoch + 1, "epochs": settings.retrain_epochs})
    return model.eval(), _accuracy(model, data.test_x, data.test_y)


def run_search(
    settings: SearchSettings, predictor: Predictor, store: Store, out: Path, on_event: Events
) -> dict[str, Any]:
    """Search, retrain, export, measure; writes the result folder and returns result.json's content.

    With `settings.follow` and a hardware term (lambda > 0), each epoch's derived network and its neighbours are
    measured into `store` and the predictor corrected there (`Follower`).
    """
    from backends import TimingProtocol, get_target

    settings.check()
    on_event = throttled(on_event)  # the search and the retraining tick after every step
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU when there is one
    space = get_space(settings.space, settings.space_options)
    runner = get_target(settings.target, settings.target_options)
    if predictor.meta.get("space_config") not in (None, space.config_dict()):
        raise UserError(f"the predictor was trained for {space.name} settings {predictor.meta['space_config']}")
    finished = out / RESULT
    previous = saved_result(finished)
    if previous is not None and previous.get("settings") == settings.to_dict():  # this exact search ran to the end
        on_event({"stage": "done", "reused": str(finished)})
        return previous
    data = load_data(settings.data, space.config.input_size, space.config.in_channels)
    if data.classes != space.config.classes:
        raise UserError(
            f"{data.name} has {data.classes} classes: pass --space-option classes={data.classes} "
            "(and a predictor trained for those settings)"
        )
    data = dataclasses.replace(
        data, **{k: getattr(data, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y")}
    )
    predictor = predictor.to(device)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    follower = None
    if settings.follow and settings.lam > 0 and runner.measures:  # a device measured elsewhere is not followed
        follower = Follower(predictor, runner, space, store, settings.follow_neighbours, FOLLOW_WEIGHT, settings.seed)
    genotype, history = search_supernet(settings, space, data, predictor, out, on_event, follower)
    search_s = time.perf_counter() - started
    (out / "genotype.txt").write_text(genotype.to_text() + "\n")
    (out / "genotype.json").write_text(json.dumps(genotype.to_dict(), indent=2) + "\n")
    model, accuracy = retrain(settings, space, genotype, data, on_event)
    torch.save(model.state_dict(), out / "weights.pt")
    doing = f"measuring it on {runner.name}" if runner.measures else f"predicting its latency on {runner.name}"
    on_event(tick("finish", 0, 1, f"exporting the network and {doing}"))
    exported = export_model(model.cpu(), space.input_shape, out / "model.onnx")
    measurement = runner.measure(exported, TimingProtocol()) if runner.measures else None
    with torch.no_grad():
        frozen = float(predictor.cpu()(_one_hot(space, genotype)))
    # What the search optimised against at its end: the followed predictor before its last correction.
    predicted = history[-1]["predicted_ms_derived"] if follower is not None else frozen
    measured = measurement.latency_ms.median if measurement is not None else None
    result = {
        "genotype": genotype.to_text(),
        "test_accuracy": accuracy,
        "latency_source": "measured" if measurement is not None else "predicted",
        "measured_latency_ms": measurement.latency_ms.to_dict() if measurement is not None else None,
        "predicted_latency_ms": predicted,
        "prediction_error": predicted / measured - 1 if measured else None,
        "frozen_predicted_latency_ms": frozen,  # the predictor as trained, never corrected
        "frozen_prediction_error": frozen / measured - 1 if measured else None,
        "followed": follower is not None,
        "schedule": dataclasses.asdict(Schedule.of(settings, len(data.train_x) // 2)),
        "target": runner.name,
        "target_config": runner.config_dict(),
        "host": measurement.host if measurement is not None else runner.host(),
        "data": data.name,
        "space_config": space.config_dict(),
        "settings": settings.to_dict(),
        "cost": {
            "search_s": search_s,
            "epoch_s": float(np.mean([r["epoch_s"] for r in history])),
            "predictor_share": float(sum(r["predictor_s"] for r in history) / sum(r["epoch_s"] for r in history)),
            "follow_share": float(sum(r.get("follow_s", 0) for r in history) / sum(r["epoch_s"] for r in history)),
            "refit_s": follower.slowest_refit_s if follower is not None else 0.0,  # the slowest correction
            "total_s": time.perf_counter() - started,
        },
        "macs": exported.macs,
        "params": sum(p.numel() for p in model.parameters()),
    }
    if measurement is None:
        result["note"] = (
            f"{runner.name} cannot measure here (its latencies were imported): the latency is the predictor's only"
        )
    if _binary(space):
        real = get_space(space.name, {**settings.space_options, "binary": False}).build(genotype)
        result["memory_mbits"] = memory_bits(model) / 1e6
        result["real_memory_mbits"] = memory_bits(real) / 1e6  # the same genotype, real-valued
    if runner.precision() != "float32":  # the target runs another network than the one trained: how far off?
        outputs = runner.infer(exported, data.test_x.cpu().numpy())
        hit = float((outputs.argmax(1) == data.test_y.cpu().numpy()).mean())
        result["on_target"] = {"precision": runner.precision(), "test_accuracy": hit, "drop": accuracy - hit}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_search(history, out / "search.png")
    on_event({"stage": "done", **{k: result[k] for k in ("test_accuracy", "predicted_latency_ms")}})
    return result


def run_sweep(
    settings: SearchSettings, lambdas: list[float], predictor: Predictor, store: Store, out: Path, on_event: Events
) -> dict[str, Any]:
    """One search per lambda (0, the DARTS baseline, always included) into out/lambda-<L>; the Pareto plot."""
    lambdas = sorted(set(lambdas) | {0.0})
    rows = []
    for lam in lambdas:
        run = dataclasses.replace(settings, lambdas=[lam])
        on_event({"stage": "sweep", "lambda": lam, "index": len(rows) + 1, "count": len(lambdas)})
        result = run_search(run, predictor, store, out / f"lambda-{lam:g}", on_event)
        rows.append(
            {
                "lambda": lam,
                "test_accuracy": result["test_accuracy"],
                "measured_ms": result["measured_latency_ms"]["median"],
                "predicted_ms": result["predicted_latency_ms"],
                "prediction_error": result["prediction_error"],
                "frozen_prediction_error": result["frozen_prediction_error"],
                "genotype": result["genotype"],
            }
        )
    baseline = rows[0]
    for row in rows:
        row["speedup_vs_lambda0"] = baseline["measured_ms"] / row["measured_ms"]
        row["accuracy_drop_vs_lambda0"] = baseline["test_accuracy"] - row["test_accuracy"]
    sweep = {"target": settings.target, "data": settings.data, "runs": rows}
    (out / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
    plot_tradeoff(rows, settings.target, out / "pareto.png")
    return sweep


@register_method
class EhDnasMethod:
    """EH-DNAS: first-order DARTS on the cell space, its loss plus lambda times a learned latency term."""

    name = "eh-dnas"
    summary = "EH-DNAS: DARTS with a differentiable latency predictor's term (lambda 0: plain DARTS)"
    settings = SearchSettings
    spaces = ("darts", "nb201")
    searches_unmeasured = True  # then the result's latency is the predictor's, and says so
    step: type = EhDnas

    def space(self, name: str, space_options: dict[str, Any]) -> SearchSpace:
        return get_space(name, space_options)

    def uses_predictor(self, settings: SearchSettings) -> bool:
        return True

    def stages(self, settings: SearchSettings) -> tuple[dict[str, int], int]:
        runs = len(set(settings.lambdas) | {0.0}) if len(settings.lambdas) > 1 else 1
        return {"search": settings.epochs, "retrain": settings.retrain_epochs}, runs

    def run(
        self, settings: SearchSettings, predictor: Predictor, store: Any, out: Path, on_event: Events
    ) -> dict[str, Any]:
        if len(settings.lambdas) > 1:
            return run_sweep(settings, settings.lambdas, predictor, store, out, on_event)
        return run_search(settings, predictor, store, out, on_event)
