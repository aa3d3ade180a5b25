"""DCP-NAS (arXiv 2306.15390): a 1-bit Child supernet searched under a real-valued Parent supernet.

Each step trains the Parent as DARTS does (cross-entropy, first order), then the
Child, whose objective is `L = -G + lambda * D(alpha) + mu * L_R` (+ the
hardware term of its architecture):

- G: the Child matches the Parent's output distribution: -G = KL(p_Parent || p_Child).
- D(alpha): tangent propagation, `||g_Child - g_Parent||_F^2`, where g is the
  gradient, with respect to alpha, of the mean probability each supernet gives
  the Parent's predicted class: the Parent's tangent direction is what the
  Child's architecture gradient should follow. Its gradient `2 H (g_Child -
  g_Parent)` needs the Hessian H of the Child's objective in alpha, approximated
  by the gradient covariance (Fisher) `g_Child g_Child^T`: no second backward pass.
- L_R: the reconstruction error of the 1-bit weights, on the weight step.

Decoupled optimisation: the weight step changes what alpha should be (alpha and
w are coupled through dw/dalpha, which first-order DARTS ignores). A learnable
term psi (one value per edge and op) stands in for it: the Child's architecture
is read as `alpha - mask * psi * s` (`DcpNas.arch_shift`, which each call of the
supernet takes as an input), where s is the last weight step's gradient
projected on each op's weights and the mask keeps only the edges whose weight
norm ranks in the top `backtrack_share`: alpha is backtracked only where the
weights are trained well enough to say something. psi is trained with alpha;
psi, s and the mask are part of the method's state dict.

lambda = 0 is CP-NAS (no tangent propagation), a setting users choose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ehdnas.core.errors import UserError
from ehdnas.core.settings import SettingError, setting
from ehdnas.methods.darts import (
    Batch,
    EhDnasMethod,
    Schedule,
    SearchSettings,
    arch_optimizer,
    hardware_loss,
    weight_optimizer,
)
from ehdnas.methods.registry import register_method
from ehdnas.spaces import get_space
from ehdnas.spaces.binary_ops import reconstruction_loss
from ehdnas.spaces.darts import DartsSpace
from ehdnas.supernets.darts import Supernet
from perf_models import Predictor


@dataclass(frozen=True)
class DcpNasSettings(SearchSettings):
    """EH-DNAS's settings and DCP-NAS's own: the tangent-propagation weight and the backtracked share."""

    dcp_lambda: float = setting(5e-3, ge=0, help="Weight of the tangent-propagation term; 0 is CP-NAS.")
    backtrack_share: float = 0.5  # share of edges, by weight-norm rank, whose alpha is backtracked
    method: str = "dcp-nas"

    def check(self) -> None:
        super().check()
        if not self.space_options.get("binary"):
            raise SettingError(
                "space_options", "dcp-nas searches the binary variant of the space: set space option binary=true"
            )
        if not 0 <= self.backtrack_share <= 1:
            raise SettingError("backtrack_share", "must lie within 0..1")


STATE = ("parent", "supernet", "parent_w_opt", "parent_a_opt", "parent_schedule", "w_opt", "a_opt", "schedule")


class DcpNas:
    """The DCP-NAS step: the Parent's DARTS step, then the Child's alpha (and psi) step and weight step."""

    def __init__(
        self,
        settings: SearchSettings,
        schedule: Schedule,
        space: DartsSpace,
        predictor: Predictor,
        generator: torch.Generator,
        device: Any,
    ) -> None:
        parent_space = get_space(space.name, {**space.config_dict(), "binary": False})
        self.parent = Supernet(parent_space, generator).to(device)
        self.supernet = Supernet(space, generator).to(device)  # the Child, 1-bit
        self.psi = torch.nn.Parameter(torch.zeros_like(self.supernet.alpha))
        # The backtracking's inputs from the last weight step: projected gradients, and the edges it applies to.
        self.projected = torch.zeros_like(self.supernet.alpha)
        self.mask = torch.zeros(len(self.supernet.alpha), 1, device=self.supernet.alpha.device)
        self.parent_w_opt, self.parent_schedule = weight_optimizer(settings, self.parent)
        self.parent_a_opt = arch_optimizer(settings, schedule, [self.parent.alpha])
        self.w_opt, self.schedule = weight_optimizer(settings, self.supernet)
        self.a_opt = arch_optimizer(settings, schedule, [self.supernet.alpha, self.psi])
        self.hardware = hardware_loss(settings, predictor, self.supernet.soft_arch(shift=self.arch_shift()))
        self.settings = settings
        self.discrepancy: list[float] = []

    def arch_shift(self) -> torch.Tensor:
        """What the Child's alpha is read less of: `mask * psi * s` (28, 8), from this method's state only.

        Made anew at each use, so that each reading of alpha has its own path to psi in the graph.
        """
        return self.mask * self.psi * self.projected

    def step(self, train: Batch, val: Batch, tau: float | None, arch: bool) -> tuple[float, float]:
        """The Parent's step, then the Child's architecture step (unless warming up: `arch` false) and weight step;
        the loss (the Child's architecture step's, else its weight step's) and the seconds in the predictor."""
        self._parent_step(train, val, tau, arch)
        loss, predictor_s = self._child_arch_step(val, tau) if arch else (None, 0.0)
        # The Child's weight step on training data: match the Parent, and keep 1-bit weights reconstructible.
        self.w_opt.zero_grad()
        with torch.no_grad():
            parent_probs = F.softmax(self.parent(train[0]), dim=1)
        child_logits = self.supernet(train[0], tau, self.arch_shift())  # psi as the architecture step left it
        kl = F.kl_div(F.log_softmax(child_logits, dim=1), parent_probs, reduction="batchmean")
        (kl + self.settings.dcp_mu * reconstruction_loss(self.supernet)).backward()
        torch.nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), self.settings.grad_clip)
        self._backtracking_inputs()
        self.w_opt.step()
        return (loss if loss is not None else kl.item()), predictor_s

    def _child_arch_step(self, val: Batch, tau: float | None) -> tuple[float, float]:
        s, tangents = self.settings, self.settings.dcp_lambda > 0
        # The Child's architecture step (alpha and psi) on validation data; one forward of each supernet
        # gives both the outputs and, with lambda > 0, the tangent directions.
        self.a_opt.zero_grad()
        with torch.set_grad_enabled(tangents):
            parent_probs = F.softmax(self.parent(val[0], tau), dim=1)
        predicted = parent_probs.argmax(1, keepdim=True)
        child_logits = self.supernet(val[0], tau, self.arch_shift())
        kl = F.kl_div(F.log_softmax(child_logits, dim=1), parent_probs.detach(), reduction="batchmean")
        t0 = time.perf_counter()
        loss = self.hardware(kl, self.supernet.soft_arch(shift=self.arch_shift()))
        predictor_s = time.perf_counter() - t0
        if tangents:  # D(alpha)'s gradient 2 H (g_C - g_P), H ~ g_C g_C^T, is added to alpha's after backward
            parent_tangent = _tangent(parent_probs, predicted, self.parent.alpha, keep_graph=False)
            child_tangent = _tangent(F.softmax(child_logits, dim=1), predicted, self.supernet.alpha, keep_graph=True)
        loss.backward()
        if tangents:
            gap = child_tangent - parent_tangent
            self.discrepancy.append(float(gap.pow(2).sum()))
            self.supernet.alpha.grad += s.dcp_lambda * 2 * child_tangent * (child_tangent * gap).sum()
        self.a_opt.step()
        return loss.item(), predictor_s

    def _parent_step(self, train: Batch, val: Batch, tau: float | None, arch: bool) -> None:
        if arch:
            self.parent_a_opt.zero_grad()
            F.cross_entropy(self.parent(val[0], tau), val[1]).backward()
            self.parent_a_opt.step()
        self.parent_w_opt.zero_grad()
        F.cross_entropy(self.parent(train[0], tau), train[1]).backward()
        torch.nn.utils.clip_grad_norm_(self.parent.weight_parameters(), self.settings.grad_clip)
        self.parent_w_opt.step()

    def _backtracking_inputs(self) -> None:
        """From the weight gradients: each op's gradient along its weights, and the edges ranked by weight norm.

        alpha is shared by every normal cell (rows 0-13) and every reduction cell (rows 14-27), so both
        figures sum over the cells of each kind.
        """
        projected = torch.zeros_like(self.projected)
        norms = torch.zeros(len(projected), device=projected.device)
        for cell in self.supernet.net.cells:
            first = len(cell.edges) if cell.reduction else 0
            for e, edge in enumerate(cell.edges):
                for o, op in enumerate(edge.ops):
                    params = [p for p in op.parameters() if p.grad is not None]
                    if params:
                        weights = torch.cat([p.detach().flatten() for p in params])
                        grads = torch.cat([p.grad.flatten() for p in params])
                        projected[first + e, o] += (grads @ weights) / (weights.norm() + 1e-12)
                        norms[first + e] += weights.norm()
        rank = norms.argsort(descending=True).argsort().float() / max(len(norms) - 1, 1)  # 0: the largest norm
        self.projected = projected
        self.mask = (rank < self.settings.backtrack_share).float().unsqueeze(1)

    def end_epoch(self) -> dict[str, Any]:
        self.parent_schedule.step()
        self.schedule.step()
        discrepancy, self.discrepancy = self.discrepancy, []
        return {
            "discrepancy": float(sum(discrepancy) / len(discrepancy)) if discrepancy else 0.0,
            "backtracked_edges": int(self.mask.sum()),
        }

    def train(self) -> None:
        self.parent.train()
        self.supernet.train()

    def state_dict(self) -> dict[str, Any]:
        state = {name: getattr(self, name).state_dict() for name in STATE}
        return {**state, "psi": self.psi.detach().clone(), "projected": self.projected, "mask": self.mask}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in STATE:
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.psi.copy_(state["psi"])
        self.projected, self.mask = state["projected"], state["mask"]


def _tangent(probs: torch.Tensor, predicted: torch.Tensor, alpha: torch.Tensor, keep_graph: bool) -> torch.Tensor:
    """d/dalpha of the mean probability given to the Parent's predicted classes: (28, 8).

    `probs` (B, classes) are a supernet's outputs, still attached to the graph that reaches its `alpha`.
    """
    (gradient,) = torch.autograd.grad(probs.gather(1, predicted).mean(), alpha, retain_graph=keep_graph)
    return gradient.detach()


@register_method
class DcpNasMethod(EhDnasMethod):
    """DCP-NAS: a 1-bit Child supernet searched under a real-valued Parent, on the binary DARTS space."""

    name = "dcp-nas"
    summary = "DCP-NAS: a 1-bit child under a real-valued parent (the binary variant of the darts space)"
    settings = DcpNasSettings
    spaces = ("darts",)  # the one space with a 1-bit variant
    step = DcpNas

    def space(self, name: str, space_options: dict[str, Any]) -> DartsSpace:
        """The binary variant, which this method sets itself; binary=false is refused."""
        values = {"binary": True, **space_options}
        space = super().space(name, values)
        if not space.config.binary:
            raise UserError("dcp-nas searches 1-bit networks: space option binary=false does not go with it")
        return space
