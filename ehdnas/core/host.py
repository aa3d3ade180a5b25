"""A fingerprint of the machine a measurement was taken on.

Latency depends on the CPU, the core count and the runtime's version, so they
are part of every measurement's key: a number from another host or another
library version is never reused silently.
"""

from __future__ import annotations

import hashlib
import os
import platform
from functools import cache
from typing import Any

from ehdnas.core.options import canonical_json


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def host_info(libraries: dict[str, str]) -> dict[str, Any]:
    """CPU model, core count, OS and the versions of the libraries a runner uses."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "libraries": dict(sorted(libraries.items())),
    }


def fingerprint(info: dict[str, Any]) -> str:
    """A short stable hash of a host description (or any JSON-able value)."""
    return hashlib.sha256(canonical_json(info).encode()).hexdigest()[:16]
