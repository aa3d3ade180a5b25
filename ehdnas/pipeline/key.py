"""What a measurement is keyed by: a number from another target setting, host, library version or space setting is
never reused silently, and the predictor trained on those measurements is filed under the same key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehdnas.core.host import fingerprint
from ehdnas.core.paths import predictors_dir


@dataclass(frozen=True)
class MeasurementKey:
    """Target, its settings, the host (CPU, cores, library versions), space and its settings."""

    target: str
    target_config: dict[str, Any]
    host: dict[str, Any]
    space: str
    space_config: dict[str, Any]

    @classmethod
    def of(cls, runner: Any, space: Any) -> MeasurementKey:
        """The key of `space`'s architectures measured by `runner` on this host."""
        return cls(runner.name, runner.config_dict(), runner.host(), space.name, space.config_dict())

    def columns(self) -> dict[str, str]:
        """The store's key columns: long settings are hashed (an index row must stay small)."""
        return {
            "target": self.target,
            "config_key": fingerprint(self.target_config),
            "host_key": fingerprint(self.host),
            "space": self.space,
            "space_key": fingerprint(self.space_config),
        }

    def predictor_path(self) -> Path:
        """Where `train-predictor` saves, and `search` looks, when no file is named."""
        keys = "-".join(fingerprint(value)[:8] for value in (self.space_config, self.target_config, self.host))
        return predictors_dir() / f"{self.space}-{self.target}-{keys}.pt"
