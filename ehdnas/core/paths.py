"""Where ehdnas keeps things on disk, read from the environment when asked, never at import.

The measurement store: `EHDNAS_DB` (an SQLAlchemy URL) if set, else a SQLite
file in the user's data directory. Predictors that `train-predictor` saves and
`search` looks for: the data directory too. What runners make again on demand
(compiled models, tuning records): `EHDNAS_CACHE` if set, else the user's
cache directory; everything there can be deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "EHDNAS_DB"
CACHE_ENV = "EHDNAS_CACHE"


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("ehdnas"))


def default_db_url() -> str:
    """`EHDNAS_DB` if set, else a SQLite file in the user's data directory."""
    return os.environ.get(DB_ENV) or f"sqlite:///{data_dir() / 'ehdnas.db'}"


def predictors_dir() -> Path:
    """Where `train-predictor` saves by default and `search` looks."""
    return data_dir() / "predictors"


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
