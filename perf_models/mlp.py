"""`mlp`: the EH-DNAS predictor, made an ensemble and trained on log latency.

EH-DNAS: each decision has a learned embedding table (choices x 10); the
decision's probability vector weights its table, the weighted embeddings are
concatenated (28 x 10 = 280 for DARTS) and an MLP 280-200-100-1 predicts
performance. Because the input enters only through those weighted sums, the
output is differentiable in softmax(alpha).

Changes, each measured on ort-cpu (see benchmarks/predictor_accuracy.py):
- the target is z-scored log latency, so errors are relative, like the metrics;
- a linear term over the probabilities runs beside the MLP (the lookup table
  that FBNet assumes), so the MLP learns only what is not additive;
- a graph feature: where the space has an additive MACs model, the expected
  MACs under the soft architecture (log, z-scored) enters the MLP and a direct
  term. It is what the `flops` baseline knows, kept differentiable; with it the
  predictor is accurate from a few hundred measurements instead of thousands;
- M members (different seeds) are trained at once as one batched module; their
  mean is the prediction and their spread the uncertainty active collection
  uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perf_models.dataset import Dataset
from perf_models.metrics import mape
from perf_models.predictor import Predictor, SoftArch


class MLPPredictor(Predictor):
    kind = "mlp"

    def __init__(
        self,
        choices: Sequence[int],
        embed_dim: int = 10,
        hidden: Sequence[int] = (200, 100),
        members: int = 5,
        dropout: float = 0.1,
        log_mean: float = 0.0,
        log_std: float = 1.0,
        macs_table: Sequence[Sequence[float]] | None = None,
        macs_rest: float = 0.0,
        macs_log_mean: float = 0.0,
        macs_log_std: float = 1.0,
    ) -> None:
        super().__init__(choices)
        self.config = {"embed_dim": embed_dim, "hidden": list(hidden), "members": members, "dropout": dropout}
        d, k, m = len(self.choices), self.max_choices, members
        self.macs_model = None
        if macs_table is not None:
            self.macs_model = {"macs_table": [list(map(float, row)) for row in macs_table], "macs_rest": macs_rest}
            self.macs_model |= {"macs_log_mean": macs_log_mean, "macs_log_std": macs_log_std}
            self.register_buffer("macs_table", torch.tensor(macs_table, dtype=torch.float32), persistent=False)
            self.macs_weight = nn.Parameter(torch.zeros(m, 1))  # direct path of the graph feature
        self.embed = nn.Parameter(torch.randn(m, d, k, embed_dim) * 0.1)  # (M, D, K, E)
        dims = [d * embed_dim + (macs_table is not None), *hidden, 1]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(m, i, o) * math.sqrt(2.0 / i)) for i, o in zip(dims, dims[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(m, 1, o)) for o in dims[1:])
        # (M, D, K): the additive lookup-table part. A random start (the ensemble's prior) makes
        # the members disagree on choices the data never showed, which active collection relies on.
        self.linear = nn.Parameter(torch.randn(m, d, k) * 0.05)
        self.register_buffer("target", torch.tensor([log_mean, log_std]))  # z-scoring of log latency

    def hparams(self) -> dict[str, Any]:
        return {
            **super().hparams(),
            **self.config,
            "log_mean": float(self.target[0]),
            "log_std": float(self.target[1]),
            **(self.macs_model or {}),
        }

    def log_macs_feature(self, x: torch.Tensor) -> torch.Tensor:
        """z-scored log of the expected MACs under soft architectures x (B, D, K): (B,)."""
        assert self.macs_model is not None
        expected = self.macs_model["macs_rest"] + (x * self.macs_table).sum((1, 2))
        return (expected.log() - self.macs_model["macs_log_mean"]) / self.macs_model["macs_log_std"]

    def member_log_latency(self, arch: SoftArch) -> tuple[torch.Tensor, bool]:
        """Log latency (ms) predicted by each member: (M, B)."""
        x, batched = self.as_soft(arch)  # (B, D, K)
        x = x * self.valid  # padding choices of smaller decisions carry no weight
        h = torch.einsum("bdk,mdke->mbde", x, self.embed).flatten(2)  # (M, B, D*E)
        if self.macs_model is not None:
            macs = self.log_macs_feature(x)  # (B,)
            h = torch.cat([h, macs.expand(h.shape[0], -1).unsqueeze(-1)], dim=-1)  # (M, B, D*E + 1)
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)  # (M, B, out)
            if layer < len(self.weights) - 1:
                h = F.dropout(F.relu(h), self.config["dropout"], self.training)
        z = h.squeeze(-1) + torch.einsum("bdk,mdk->mb", x, self.linear)  # (M, B)
        if self.macs_model is not None:
            z = z + self.macs_weight * macs  # (M, 1) * (B,)
        return self.target[0] + self.target[1] * z, batched

    def forward(self, arch: SoftArch) -> torch.Tensor:
        """Predicted latency in ms: (B,) for a batch, a scalar for one architecture."""
        log_latency, batched = self.member_log_latency(arch)
        latency = log_latency.mean(0).exp()
        return latency if batched else latency[0]

    def uncertainty(self, arch: SoftArch) -> torch.Tensor:
        """Spread of the members in log latency (about the relative standard deviation)."""
        log_latency, batched = self.member_log_latency(arch)
        spread = log_latency.std(0)
        return spread if batched else spread[0]


def fit_mlp(
    train: Dataset,
    val: Dataset,
    seed: int = 0,
    epochs: int = 400,
    batch_size: int = 32,
    lr: float = 1e-3,
    patience: int = 60,
    on_epoch: Callable[[int, int], None] | None = None,
    **hparams: Any,
) -> MLPPredictor:
    """Train with L1 loss on z-scored log latency; keep the epoch with the best validation MAPE.

    `on_epoch(done, epochs)` after each epoch (`epochs` is the most there can be: patience may stop it earlier).
    """
    choices = [len(c) for _, c in train.meta["decisions"]]
    log_y = np.log(train.latency_ms)
    macs_model = train.meta.get("choice_macs")
    if macs_model is not None:
        table = np.asarray(macs_model["table"])
        log_macs = np.log(macs_model["rest"] + table[np.arange(len(choices)), train.indices].sum(1))
        hparams = {
            "macs_table": macs_model["table"],
            "macs_rest": float(macs_model["rest"]),
            "macs_log_mean": float(log_macs.mean()),
            "macs_log_std": float(log_macs.std() or 1.0),
            **hparams,
        }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPPredictor(choices, log_mean=float(log_y.mean()), log_std=float(log_y.std() or 1.0), **hparams)
        x = model.one_hot(train.indices)
        z = torch.as_tensor((log_y - log_y.mean()) / (log_y.std() or 1.0), dtype=torch.float32)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        monitor = val if len(val) else train
        best, best_state, since_best = math.inf, None, 0
        for epoch in range(epochs):
            model.train()
            for rows in torch.randperm(len(train)).split(batch_size):
                log_latency, _ = model.member_log_latency(x[rows])
                predicted_z = (log_latency - model.target[0]) / model.target[1]  # (M, B)
                loss = (predicted_z - z[rows]).abs().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            score = mape(model.predict(monitor), monitor.latency_ms)
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs)
            if score < best:
                best, best_state, since_best = score, {k: v.clone() for k, v in model.state_dict().items()}, 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    model.load_state_dict(best_state)
    return model.eval()
