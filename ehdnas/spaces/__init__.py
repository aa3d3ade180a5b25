"""Search spaces and their registry. Importing this registers every built-in space."""

from ehdnas.spaces import darts as _darts  # noqa: F401  (registers "darts")
from ehdnas.spaces import flownas as _flownas  # noqa: F401  (registers "flownas")
from ehdnas.spaces import nb201 as _nb201  # noqa: F401  (registers "nb201")
from ehdnas.spaces.base import Decision, SearchSpace, get_space, list_spaces, register_space

__all__ = ["Decision", "SearchSpace", "get_space", "list_spaces", "register_space"]
