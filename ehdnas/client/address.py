"""Where a client finds the server and its token: the defaults `ehdnas serve` starts with, defined here for both.

The server: the URL given, else `EHDNAS_SERVER`, else the address a server
started with no flags listens on. The token: the one given (a `--token-file`),
else `EHDNAS_API_TOKEN`, else the file where `ehdnas serve` stores the token it
generates, so a client on the server's machine, as the same user, needs none.
"""

from __future__ import annotations

import os
from pathlib import Path

from ehdnas.core.errors import UserError
from ehdnas.core.paths import data_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SERVER_ENV = "EHDNAS_SERVER"
TOKEN_ENV = "EHDNAS_API_TOKEN"


def stored_token_file() -> Path:
    """Where `ehdnas serve` keeps the token it generated on its first start (no `EHDNAS_API_TOKEN`)."""
    return data_dir() / "api-token"


def server_url(url: str | None = None) -> str:
    return (url or os.environ.get(SERVER_ENV) or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}").rstrip("/")


def read_text(path: Path, what: str) -> str:
    """The text of file `path`, refused in one line naming it (`what`: the flag) when it cannot be read."""
    try:
        return path.expanduser().read_text()
    except FileNotFoundError:
        raise UserError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path}: a folder, not a file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path}: not a text file (UTF-8)") from None
    except OSError as err:
        raise UserError(f"{what} {path}: cannot read it ({err.strerror or err})") from None


def read_token(path: Path, what: str) -> str:
    token = read_text(path, what).strip()
    if not token:
        raise UserError(f"{what} {path} is empty")
    return token


def find_token(token_file: Path | None = None) -> tuple[str | None, str]:
    """The token to send and where it came from (said when the server refuses it); (None, "") when none is found."""
    if token_file is not None:
        return read_token(token_file, "--token-file"), f"--token-file {token_file}"
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], f"${TOKEN_ENV}"
    stored = stored_token_file()
    if stored.is_file():
        return read_token(stored, "the stored token"), str(stored)
    return None, ""
