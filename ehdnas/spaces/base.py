"""What every search space provides, and the registry that lists them.

A space turns architectures (typed, frozen values) into text, JSON, a fixed-length
categorical encoding for predictors, a soft encoding that a supernet's
softmax(alpha) maps onto, and a torch module. Search code passes architectures
around explicitly; nothing here holds an "active" architecture.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np

from ehdnas.core.errors import UserError
from ehdnas.core.options import brief, make_config, parse_pairs
from ehdnas.core.registry import Registry

if TYPE_CHECKING:
    import torch

A = TypeVar("A")


@dataclass(frozen=True)
class Decision:
    """One categorical choice of the space, e.g. the op on one edge of a cell."""

    name: str
    choices: tuple[str, ...]


class SearchSpace(ABC, Generic[A]):
    """A search space with its network settings (`config`, a frozen dataclass)."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()

    # --- architectures -------------------------------------------------------
    @property
    @abstractmethod
    def decisions(self) -> Sequence[Decision]:
        """The decisions that `encode` answers, in order."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> A:
        """One architecture drawn uniformly from the space."""

    @abstractmethod
    def from_dict(self, data: Mapping[str, Any]) -> A:
        """Inverse of `to_dict`; raises UserError on an invalid architecture."""

    @abstractmethod
    def from_text(self, text: str) -> A:
        """Inverse of `to_text`; raises UserError on an invalid architecture."""

    def from_index(self, index: int) -> A:
        """The architecture a published benchmark numbers `index` (NAS-Bench-201's), for a space that has one."""
        raise UserError(f"space {self.name!r} has no architecture index: give architectures in its text form")

    @abstractmethod
    def encode(self, arch: A) -> list[int]:
        """The chosen index of every decision."""

    @abstractmethod
    def decode(self, indices: Sequence[int]) -> A:
        """Inverse of `encode`."""

    def to_text(self, arch: A) -> str:
        return arch.to_text()  # type: ignore[attr-defined]

    def to_dict(self, arch: A) -> dict[str, Any]:
        return arch.to_dict()  # type: ignore[attr-defined]

    def parse(self, text: str) -> A:
        """An architecture from its text form or its JSON form."""
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except (ValueError, RecursionError) as err:  # also an integer over 4300 digits, or nesting past the stack
                raise UserError(f"{self.name} architecture: invalid JSON ({err})") from None
            return self.from_dict(data)
        return self.from_text(text)

    def one_hot(self, arch: A) -> list[np.ndarray]:
        """Per-decision probability vectors of a discrete architecture."""
        vectors = []
        for decision, index in zip(self.decisions, self.encode(arch)):
            vector = np.zeros(len(decision.choices), dtype=np.float32)
            vector[index] = 1.0
            vectors.append(vector)
        return vectors

    def neighbours(self, arch: A, count: int, rng: np.random.Generator) -> list[A]:
        """Up to `count` distinct valid architectures that differ from `arch` in one decision: where a search
        stands, the measurements that correct its predictor are most useful."""
        start = self.encode(arch)
        found: dict[str, A] = {}
        for _ in range(20 * count):
            if len(found) >= count:
                break
            decision = int(rng.integers(len(start)))
            choice = int(rng.integers(len(self.decisions[decision].choices)))
            if choice == start[decision]:
                continue
            try:  # a change that breaks the space's rules (a DARTS node with three edges) is not a neighbour
                candidate = self.decode([choice if d == decision else i for d, i in enumerate(start)])
            except UserError:
                continue
            found.setdefault(self.to_text(candidate), candidate)
        return list(found.values())

    def sample_many(self, count: int, seed: int) -> list[A]:
        """`count` architectures from a seeded generator: the same seed gives the same list."""
        rng = np.random.default_rng(seed)
        return [self.sample(rng) for _ in range(count)]

    # --- networks -----------------------------------------------------------
    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Static input shape of built networks, batch first."""

    @abstractmethod
    def build(self, arch: A) -> torch.nn.Module:
        """A standalone network for `arch` with this space's settings."""

    def choice_macs(self) -> tuple[np.ndarray, int] | None:
        """An additive MACs model, `rest + sum(table[d, choice_d])` with a (D, K) table, if the space has one.

        Predictors use it as a graph feature that stays differentiable: under a
        soft architecture it gives the expected MACs.
        """
        return None

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


def json_list(value: Any, where: str, accepted: str) -> Sequence[Any]:
    """`value` if it is an array; else a UserError naming `where`, what it accepts and the value given."""
    if not isinstance(value, list | tuple):
        raise UserError(f"{where}: expected {accepted}, got {brief(value)}")
    return value


def json_object(value: Any, keys: Sequence[str], where: str) -> Mapping[str, Any]:
    """`value` if it is an object with exactly `keys`; else a UserError naming `where`, the keys and the value."""
    if not isinstance(value, Mapping) or set(value) != set(keys):
        raise UserError(f"{where}: expected an object with the keys {list(keys)}, got {brief(value)}")
    return value


SPACES: Registry[type[SearchSpace]] = Registry("search space")
register_space = SPACES.register


def get_space(name: str, options: Mapping[str, Any] | Iterable[str] = ()) -> SearchSpace:
    """A space by name, its settings from a mapping or from `KEY=VALUE` strings."""
    cls = SPACES.get(name)
    values = options if isinstance(options, Mapping) else parse_pairs(options, f"space {name!r}")
    return cls(make_config(cls.Config, values, f"space {name!r}"))


def list_spaces() -> list[str]:
    return SPACES.names()
