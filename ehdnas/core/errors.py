"""The one exception type that means "the user gave something wrong".

The CLI prints its message as one line and exits non-zero; any other exception
is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: a file, an option, a name, a genotype."""
