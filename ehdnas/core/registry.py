"""A small typed registry, the one mechanism behind the target and space registries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ehdnas.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries; refuses duplicates and answers an unknown name with the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UserError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self, order: str = "sorted") -> list[str]:
        """Every name, sorted, or in the order they were registered (`order="registered"`)."""
        return list(self._entries) if order == "registered" else sorted(self._entries)
