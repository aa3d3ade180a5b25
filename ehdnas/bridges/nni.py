"""An ehdnas latency predictor inside NNI 3.0's strategies: a differentiable penalty and a black-box profiler.

`predictor_penalty` is what NNI's differentiable strategies (`DARTS`,
`GumbelDARTS`, `Proxyless`) take as `penalty=`: it applies the predictor to the
strategy's own soft architecture, the probabilities of its live architecture
logits, so the penalty's gradient reaches those logits. The probabilities the
strategy hands the penalty (`export_probs()`) are detached floats, and lack
the `none` logit of a DARTS cell edge, so they are not used.
`ProfilerPenalty`'s semantics are NNI's own (inherited):
`aggregate(loss, nonlinear(latency_ms / baseline - 1))`, scaled by `scale`.

`predictor_profiler` is an `nni.nas.profiler.Profiler`: the predicted latency
in ms of a discrete sample, for `SampleProfilerPenalty` (ENAS) and
`RangeProfilerFilter`; `predictor_filter` is that filter for RandomOneShot,
which also turns down the samples of NNI's DARTS that ehdnas's cannot express
(RandomOneShot draws a node's two inputs independently, so at times one twice).

NNI is imported only when one of them is built: it lives in its own
environment (`make nni`), its pins conflict with this project's.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ehdnas.bridges.nni_labels import LabelMap, NotInSpace, Sample, label_map
from ehdnas.core.errors import UserError
from ehdnas.spaces import get_space
from perf_models.predictor import Predictor

if TYPE_CHECKING:
    from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty, RangeProfilerFilter
    from nni.nas.profiler import Profiler


def _checked(predictor: Predictor, space: str) -> tuple[Predictor, LabelMap]:
    """The predictor, frozen, and the label map of `space`, once the predictor is known to be one of `space`'s."""
    labels = label_map(space)
    trained_for = predictor.meta.get("space")
    if trained_for not in (None, space):
        raise UserError(f"this predictor was trained for space {trained_for!r}, not {space!r}")
    choices = [len(d.choices) for d in get_space(space).decisions]
    if predictor.choices != choices:
        raise UserError(f"this predictor's decisions {predictor.choices} are not those of space {space!r}")
    return predictor.eval().requires_grad_(False), labels


def architecture_logits(supernet: nn.Module) -> dict[str, tuple[nn.Parameter, list[str], nn.Module]]:
    """Label -> (live logits, their op names, the softmax the strategy applies to them) for every architecture
    parameter of an NNI supernet that a differentiable strategy made: a cell's edges (`_arch_alpha`, a
    ParameterDict over the cell's `op_names` then `none`), a mixed depth's, and LayerChoices' (`_arch_alpha`,
    over `names`); one entry per label, whether shared by several modules (NasBench201's cells) or not."""
    found: dict[str, tuple[nn.Parameter, list[str], nn.Module]] = {}
    for module in supernet.modules():
        alpha = getattr(module, "_arch_alpha", None)
        softmax = getattr(module, "_softmax", None) or nn.Softmax(-1)  # GumbelDARTS's is Gumbel's
        if isinstance(alpha, nn.ParameterDict):  # a cell (one logit vector per edge) or a mixed depth
            ops = list(getattr(module, "op_names", []))  # a depth's have no op names: refused by label later
            for label, logits in alpha.items():
                names = ops + ["none"] * (len(logits) - len(ops)) if ops else [str(i) for i in range(len(logits))]
                found.setdefault(label, (logits, names, softmax))
        elif isinstance(alpha, nn.Parameter) and hasattr(module, "names"):  # a mixed LayerChoice
            found.setdefault(module.label, (alpha, [str(n) for n in module.names], softmax))
    return found


def architecture_probs(supernet: nn.Module) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """Label -> (the probabilities of its live logits, differentiable in them; their op names)."""
    return {
        label: (softmax(logits), names) for label, (logits, names, softmax) in architecture_logits(supernet).items()
    }


def _require_nni() -> None:
    try:
        import nni  # noqa: F401
    except ImportError:
        raise UserError("NNI is not installed here: `make nni` makes its environment, .venv-nni") from None


@cache
def _penalty_class() -> type[ExpectationProfilerPenalty]:
    _require_nni()
    from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty

    class PredictorPenalty(ExpectationProfilerPenalty):
        """`ExpectationProfilerPenalty` (the type NNI's DARTS accepts) whose value is an ehdnas predictor on
        the supernet's live soft architecture."""

        def __init__(self, predictor: Predictor, space: str, supernet: nn.Module, **penalty: Any) -> None:
            super().__init__(predictor_profiler(predictor, space), **penalty)
            self.predictor, self.labels = _checked(predictor, space)
            self._supernet = (supernet,)  # in a tuple: not a submodule, its weights are the strategy's

        def profile(self, sample: Sample) -> torch.Tensor:
            """Predicted latency (ms, a 0-d tensor) of the soft architecture; `sample` (detached) is unused."""
            probs = architecture_probs(self._supernet[0])
            if not probs:
                raise UserError(
                    "the penalty's model space has no architecture parameters: give it the model space that the "
                    "strategy runs on (the one given to RawFormatModelSpace.from_model)"
                )
            return self.predictor(self.labels.soft(probs))

    return PredictorPenalty


@cache
def _profiler_class() -> type[Profiler]:
    _require_nni()
    from nni.nas.profiler import Profiler

    class PredictorProfiler(Profiler):
        """Predicted latency (ms) of a discrete NNI sample."""

        def __init__(self, predictor: Predictor, space: str) -> None:
            self.predictor, self.labels = _checked(predictor, space)
            self.space = get_space(space)

        def profile(self, sample: Sample) -> float:
            arch = self.labels.to_arch(sample)
            with torch.no_grad():
                return float(self.predictor([torch.from_numpy(v) for v in self.space.one_hot(arch)]))

    return PredictorProfiler


def predictor_penalty(
    predictor: Predictor,
    space: str,
    supernet: nn.Module,
    baseline: float,
    scale: float = 1.0,
    *,
    nonlinear: str = "linear",
    aggregate: str = "add",
) -> ExpectationProfilerPenalty:
    """The penalty for `DARTS(penalty=...)`, `GumbelDARTS` or `Proxyless`, on the model space `supernet` (NNI's
    hub `DARTS` for ehdnas space "darts", `NasBench201` for "nb201"), which the strategy turns into a supernet in
    place; `baseline` in ms (NNI's `ProfilerPenalty` arguments)."""
    cls = _penalty_class()
    return cls(predictor, space, supernet, baseline=baseline, scale=scale, nonlinear=nonlinear, aggregate=aggregate)


def predictor_profiler(predictor: Predictor, space: str) -> Profiler:
    """The predictor as an NNI `Profiler` over discrete samples of the model space of ehdnas space `space`."""
    return _profiler_class()(predictor, space)


@cache
def _filter_class() -> type[RangeProfilerFilter]:
    _require_nni()
    from nni.nas.oneshot.pytorch.profiler import RangeProfilerFilter

    class PredictorFilter(RangeProfilerFilter):
        """NNI's range filter on the predicted latency; a sample outside the ehdnas space is turned down too."""

        def filter(self, sample: Sample) -> bool:
            try:
                return super().filter(sample)
            except NotInSpace:  # any other mismatch (a label, an op) is still an error
                return False

    return PredictorFilter


def predictor_filter(
    predictor: Predictor, space: str, min_ms: float | None = None, max_ms: float | None = None
) -> RangeProfilerFilter:
    """`RandomOneShot(filter=...)`: keep the samples whose predicted latency is within [min_ms, max_ms]."""
    return _filter_class()(predictor_profiler(predictor, space), min=min_ms, max=max_ms)
