"""Starting the two servers of a device farm: TVM's RPC tracker, and a device's RPC server with ehdnas's functions.

Both are TVM's own servers (each in a worker process TVM starts); these
functions start one and keep it running until this process is interrupted.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from backends.remote import device

HOST = "127.0.0.1"  # loopback unless told otherwise: a device server executes what it is sent
TRACKER_PORT = 9190  # TVM's defaults
DEVICE_PORT = 9090
SECURITY_WARNING = (
    "WARNING: this device server runs whatever code a client sends it: anyone who can reach "
    "{host}:{port} (or the tracker) can execute programs on this machine as this user. "
    "Serve only on a trusted network."
)


def _init_device(server_pid: int) -> None:
    """The device server's init, in TVM's worker process: die with `ehdnas device`, then register the functions."""
    from ehdnas.core.lifeline import die_with

    die_with(server_pid)
    device.init()


def start_device(tracker: tuple[str, int], key: str, host: str, port: int) -> Any:
    """A TVM RPC server on `host:port` (or the next free port up to +20) registered with `tracker` under `key`."""
    from tvm import rpc

    return rpc.Server(
        host=host,
        port=port,
        port_end=port + 20,
        tracker_addr=tracker,
        key=key,
        silent=True,
        server_init_callback=functools.partial(_init_device, os.getpid()),
    )


def start_tracker(host: str, port: int) -> Any:
    """TVM's RPC tracker on `host:port` (or the next free port up to +20)."""
    from tvm.rpc.tracker import Tracker

    return Tracker(host=host, port=port, port_end=port + 20, silent=True)


def serve_forever(server: Any) -> None:
    """Keep `server` (a tracker or a device) running until it stops or this process is interrupted."""
    try:
        while server.proc is not None and server.proc.is_alive():
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
