"""The differentiable predictor interface, soft-architecture input, and the one-file save format.

A predictor is a `torch.nn.Module` over a soft architecture: one probability
vector per decision of the space (a one-hot vector for a discrete architecture,
softmax(alpha) inside a supernet). Its output is the predicted latency in ms,
differentiable in those probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ehdnas.core.errors import UserError
from ehdnas.core.options import brief

FORMAT = "ehdnas-predictor"
VERSION = 1
SoftArch = torch.Tensor | Sequence[torch.Tensor]


class Predictor(nn.Module):
    """Base of the differentiable predictors: input handling, numpy prediction, metadata."""

    kind: str

    def __init__(self, choices: Sequence[int]) -> None:
        super().__init__()
        self.choices = [int(c) for c in choices]  # number of choices of each decision
        self.max_choices = max(self.choices)
        mask = torch.zeros(len(self.choices), self.max_choices, dtype=torch.bool)
        for d, k in enumerate(self.choices):
            mask[d, :k] = True
        self.register_buffer("valid", mask, persistent=False)
        self.meta: dict[str, Any] = {}

    def hparams(self) -> dict[str, Any]:
        """Constructor arguments, saved with the weights."""
        return {"choices": self.choices}

    def as_soft(self, arch: SoftArch) -> tuple[torch.Tensor, bool]:
        """(B, D, K) probabilities from a (D, K) / (B, D, K) tensor or a list of D (K_d,) / (B, K_d) tensors."""
        if not isinstance(arch, torch.Tensor):
            if len(arch) != len(self.choices):
                raise ValueError(f"expected {len(self.choices)} probability vectors, got {len(arch)}")
            arch = torch.stack([F.pad(p, (0, self.max_choices - p.shape[-1])) for p in arch], dim=-2)
        batched = arch.dim() == 3
        x = arch if batched else arch.unsqueeze(0)
        if x.shape[1:] != (len(self.choices), self.max_choices):
            raise ValueError(f"expected a soft architecture of shape (D={len(self.choices)}, K={self.max_choices})")
        return x.to(next(self.parameters()).dtype), batched

    def one_hot(self, indices: np.ndarray) -> torch.Tensor:
        """(N, D) choice indices to (N, D, K) one-hot probabilities."""
        return F.one_hot(torch.as_tensor(indices, dtype=torch.long), self.max_choices).float()

    def predict(self, data: Any) -> np.ndarray:
        """Latency in ms of every architecture of a Dataset (no gradient)."""
        self.eval()
        with torch.no_grad():
            return self(self.one_hot(data.indices)).numpy().astype(np.float64)

    def save(self, path: Path | str, meta: dict[str, Any]) -> Path:
        """One file: kind, constructor arguments, weights, and where the training data came from.

        Written beside `path` and renamed onto it, so a failed save leaves the file there was, never half of one.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "hparams": self.hparams(),
            "state_dict": self.state_dict(),
            "meta": meta,
        }
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: two may save at once
        try:
            torch.save(payload, partial)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path


def load_predictor(
    path: Path | str,
    space: str | None = None,
    space_config: dict | None = None,
    target: str | None = None,
    target_config: dict | None = None,
) -> Predictor:
    """Load a predictor file; with `space` or `target` (and their settings) given, refuse one trained for another:
    latency on one target says nothing of another's."""
    from perf_models.kinds import KINDS

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such predictor file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors of every kind
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""  # torch's own run to paragraphs
        raise UserError(f"{path}: not a predictor file ({type(err).__name__}: {brief(first)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not an ehdnas predictor file")
    if payload.get("version") != VERSION:
        raise UserError(f"{path}: predictor format version {payload.get('version')}, this ehdnas reads {VERSION}")
    meta = payload["meta"]
    if space is not None and meta["space"] != space:
        raise UserError(f"{path}: this predictor was trained for space {meta['space']!r}, not {space!r}")
    if space_config is not None and meta["space_config"] != space_config:
        raise UserError(
            f"{path}: this predictor was trained for {meta['space']} with settings {meta['space_config']}, "
            f"not {space_config}"
        )
    if target is not None and meta.get("target") not in (None, target):
        raise UserError(f"{path}: this predictor was trained for target {meta['target']!r}, not {target!r}")
    if target_config is not None and meta.get("target_config") not in (None, target_config):
        raise UserError(
            f"{path}: this predictor was trained for {meta['target']} with settings {meta['target_config']}, "
            f"not {target_config}"
        )
    module = KINDS.get(payload["kind"]).module
    assert module is not None, "only differentiable kinds are saved"
    predictor = module(**payload["hparams"])
    predictor.load_state_dict(payload["state_dict"])
    predictor.meta = meta
    return predictor.eval()
