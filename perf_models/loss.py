"""The hardware term that a training loop adds to its task loss.

Forms (latency in ms comes from a differentiable predictor):
- `eh-dnas`: task + lam / perf, the EH-DNAS form `CE + lambda / f(softmax(alpha))`, with
  perf = ref_ms / latency (speed relative to a reference network, so lam is unitless)
  or, without ref_ms, perf = 1000 / latency (inferences per second);
- `add#linear`: task + lam * latency / ref_ms (ProxylessNAS);
- `mul#log`: task * (log latency / log ref_ms) ** beta (ProxylessNAS);
- `hinge`: task + lam * max(0, latency / target_ms - 1): free below a latency budget.
"""

from __future__ import annotations

import math

import torch

from ehdnas.core.errors import UserError
from perf_models.predictor import Predictor, SoftArch

FORMS = ("eh-dnas", "add#linear", "mul#log", "hinge")


class HardwareLoss(torch.nn.Module):
    """`loss = HardwareLoss(predictor, ...)(task_loss, soft_arch)`; the predictor stays frozen."""

    def __init__(
        self,
        predictor: Predictor,
        form: str = "eh-dnas",
        lam: float = 1e-4,
        ref_ms: float | None = None,
        target_ms: float | None = None,
        beta: float = 0.6,
    ) -> None:
        super().__init__()
        if form not in FORMS:
            raise UserError(f"unknown hardware loss form {form!r}; known: {', '.join(FORMS)}")
        if form in ("add#linear", "mul#log") and not ref_ms:
            raise UserError(f"hardware loss {form!r} needs ref_ms, a reference latency in ms")
        if form == "mul#log" and ref_ms is not None and ref_ms <= 1.0:
            raise UserError("hardware loss 'mul#log' needs ref_ms above 1 ms (it divides by log ref_ms)")
        if form == "hinge" and not target_ms:
            raise UserError("hardware loss 'hinge' needs target_ms, the latency budget in ms")
        self.predictor = predictor.eval().requires_grad_(False)
        self.form, self.lam, self.ref_ms, self.target_ms, self.beta = form, lam, ref_ms, target_ms, beta

    def forward(self, task_loss: torch.Tensor, arch: SoftArch) -> torch.Tensor:
        latency = self.predictor(arch)
        if self.form == "eh-dnas":
            return task_loss + self.lam / ((self.ref_ms or 1000.0) / latency)
        if self.form == "add#linear":
            return task_loss + self.lam * latency / self.ref_ms
        if self.form == "mul#log":
            return task_loss * (torch.log(latency) / math.log(self.ref_ms)) ** self.beta
        return task_loss + self.lam * torch.relu(latency / self.target_ms - 1.0)
