"""Where runners keep what is expensive to make again: compiled models, tuning records.

One root for every runner: `EHDNAS_CACHE` if set, else the user's cache
directory. Everything under it can be deleted at any time; it is rebuilt.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "EHDNAS_CACHE"


def cache_dir(*parts: str) -> Path:
    """The folder `parts` under the cache root, created if missing."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV])
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("ehdnas"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
