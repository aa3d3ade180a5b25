"""A predictor corrected by new measurements: what a search uses so that its hardware term is right where it goes.

A predictor trained on uniform samples is least accurate exactly where a
search drives the architecture (pool- and skip-heavy cells: 40-180% off was
measured at searched networks). `Corrected` multiplies a frozen base predictor
by a learned factor, `exp(bias + sum(table * p))` over the soft architecture p
(a lookup table in log space), fitted in closed form by weighted ridge
regression on measured architectures. Ridge pulls the factor toward 1 where
no measurement says otherwise, so the base's shape is kept away from the data;
the fit takes milliseconds, so it can run after every search epoch. The output
stays differentiable in p.
"""

from __future__ import annotations

import numpy as np
import torch

from perf_models.predictor import Predictor, SoftArch


class Corrected(Predictor):
    """`base(p) * exp(bias + sum(table * p))`; `fit` sets table and bias from measurements, the base stays frozen."""

    kind = "corrected"

    def __init__(self, base: Predictor, ridge: float = 0.1, counts: bool = True) -> None:
        super().__init__(base.choices)
        self.base = base.eval().requires_grad_(False)
        self.ridge, self.counts = ridge, counts
        self.meta = base.meta
        self.register_buffer("table", torch.zeros(len(self.choices), self.max_choices))  # (D, K) log factors
        self.register_buffer("shared", torch.zeros(self.max_choices))  # (K,) log factor of choice k, any decision
        self.register_buffer("bias", torch.zeros(()))

    def forward(self, arch: SoftArch) -> torch.Tensor:
        x, batched = self.as_soft(arch)  # (B, D, K)
        x = x * self.valid
        factor = torch.exp(self.bias + (x * self.table).sum((1, 2)) + x.sum(1) @ self.shared)  # (B,)
        latency = self.base(x) * factor
        return latency if batched else latency[0]

    def fit(self, indices: np.ndarray, latency_ms: np.ndarray, weights: np.ndarray) -> None:
        """Weighted ridge fit of log(measured / base) on one-hot features: (N, D) indices, (N,) ms, (N,) weights.

        Minimises sum w_i (log m_i - log base_i - bias - t . x_i)^2 + ridge |t|^2 (the bias is not shrunk).
        """
        x = self.one_hot(indices)  # (N, D, K)
        with torch.no_grad():
            base_ms = self.base(x.to(self.table.device)).double().cpu().numpy()
        residual = np.log(latency_ms) - np.log(base_ms)  # (N,)
        x = x * self.valid.cpu()
        shared = x.sum(1) if self.counts else torch.zeros(len(x), self.max_choices)  # (N, K)
        design = np.hstack([x.flatten(1).double().numpy(), shared.double().numpy(), np.ones((len(x), 1))])
        w = np.asarray(weights, dtype=np.float64)
        penalty = np.full(design.shape[1], self.ridge)
        penalty[-1] = 0.0
        gram = design.T @ (design * w[:, None]) + np.diag(penalty)
        solution = np.linalg.lstsq(gram, design.T @ (w * residual), rcond=None)[0]
        table, shared = solution[: self.table.numel()], solution[self.table.numel() : -1]
        with torch.no_grad():
            self.table.copy_(torch.as_tensor(table).view_as(self.table))
            self.shared.copy_(torch.as_tensor(shared))
            self.bias.fill_(float(solution[-1]))
