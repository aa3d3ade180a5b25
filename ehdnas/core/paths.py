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

from ehdnas.core.writable import writable_dir

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


def cache_root() -> Path:
    """`EHDNAS_CACHE`'s folder if set, else the user's cache directory: checked as a writable folder, not made.

    A file there, or a folder that cannot be written, is a one-line `UserError` naming it, said before a
    command's work rather than as a traceback from deep inside a runner.
    """
    if os.environ.get(CACHE_ENV):
        return writable_dir(Path(os.environ[CACHE_ENV]), CACHE_ENV)
    from platformdirs import user_cache_dir

    return writable_dir(Path(user_cache_dir("ehdnas")), f"the cache folder (move it with {CACHE_ENV})")


def cache_dir(*parts: str) -> Path:
    """The folder `parts` under the cache root, created if missing."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
