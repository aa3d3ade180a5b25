"""Where a remote device is found: `HOST:PORT/KEY`, the tracker's address and the key its devices register under."""

from __future__ import annotations

from dataclasses import dataclass

from ehdnas.core.errors import UserError


@dataclass(frozen=True)
class RemoteAddress:
    host: str
    port: int
    key: str

    @classmethod
    def parse(cls, text: str) -> RemoteAddress:
        """`HOST:PORT/KEY`; anything else is the user's error, in one line."""
        where, _, key = text.strip().partition("/")
        try:
            host, port = parse_tracker(where)
        except UserError:
            host = ""
        if not host or not key or "/" in key:
            raise UserError(f"remote {text!r} is not HOST:PORT/KEY (a tracker's address and a device key)")
        return cls(host, port, key)

    @property
    def tracker(self) -> tuple[str, int]:
        return self.host, self.port

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.key}"


def parse_tracker(text: str) -> tuple[str, int]:
    """A tracker's `HOST:PORT`, as `ehdnas devices` and `ehdnas device` take it."""
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"tracker {text!r} is not HOST:PORT")
    return host, int(port)
