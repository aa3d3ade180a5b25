"""What a differentiable search (EH-DNAS, DCP-NAS) trains: a space's supernet with one alpha row per decision.

alpha is one (D, K) tensor, D the space's decisions in their order and K their
choices, so softmax(alpha) is directly the soft architecture a latency
predictor takes. Each space with such a supernet registers it under the space's
name; `dnas_supernet(space)` finds it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ehdnas.core.registry import Registry
from ehdnas.spaces import SearchSpace


class DnasSupernet(nn.Module):
    """Network weights (`net`, which takes the op weights as extra inputs) plus architecture logits alpha (D, K)."""

    def __init__(self, space: SearchSpace, net: nn.Module, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.space, self.net = space, net
        decisions = space.decisions
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(decisions), len(decisions[0].choices), generator=generator))

    def arch_logits(self, shift: torch.Tensor | None = None) -> torch.Tensor:
        """alpha as the search reads it: (D, K), less `shift` when a method corrects it (DCP-NAS's backtracking)."""
        return self.alpha if shift is None else self.alpha - shift

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def soft_arch(self, tau: float | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
        """softmax(alpha - shift), or a Gumbel-softmax sample at temperature tau: (D, K)."""
        logits = self.arch_logits(shift)
        return F.softmax(logits, dim=-1) if tau is None else F.gumbel_softmax(logits, tau=tau, dim=-1)

    def cell_weights(self, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The (D, K) op weights as `net` takes them: whole, unless a space splits them between cell types."""
        return (weights,)

    def forward(self, x: torch.Tensor, tau: float | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, *self.cell_weights(self.soft_arch(tau, shift)))

    @abstractmethod
    def derive(self, shift: torch.Tensor | None = None, skip_cap: int = 1_000) -> Any:
        """The discrete architecture softmax(alpha - shift) stands for, at most `skip_cap` skip_connect where the
        space's rule caps them (P-DARTS)."""


SUPERNETS: Registry[type[DnasSupernet]] = Registry("DNAS supernet")
register_supernet = SUPERNETS.register


def dnas_supernet(space: SearchSpace, generator: torch.Generator | None = None) -> DnasSupernet:
    """The supernet of `space` (its settings), alpha drawn from `generator`."""
    import ehdnas.supernets.darts
    import ehdnas.supernets.nb201  # noqa: F401  (register theirs)

    return SUPERNETS.get(space.name)(space, generator)
