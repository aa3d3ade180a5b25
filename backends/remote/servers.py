"""Running the two servers of a device farm in this process: TVM's RPC tracker, and a device's RPC server.

Both are TVM's own servers, run here rather than in the worker process TVM's
`Tracker` and `Server` classes start: a worker outlives a killed parent (and
would keep a vanished device registered), and in this process the device's
functions see exactly the modules this process has. Each RPC session of a
device runs in a process forked from this one.
"""

from __future__ import annotations

import os
from typing import Any

from backends.remote import device

HOST = "127.0.0.1"  # loopback unless told otherwise: a device server executes what it is sent
TRACKER_PORT = 9190  # TVM's defaults
DEVICE_PORT = 9090
PORTS_TRIED = 20  # a taken port: the next one up, this many at most
SECURITY_WARNING = (
    "WARNING: this device server runs whatever code a client sends it: anyone who can reach "
    "{host}:{port} (or the tracker) can execute programs on this machine as this user. "
    "Serve only on a trusted network."
)


def start_device(tracker: tuple[str, int], key: str, host: str, port: int) -> Any:
    """A TVM RPC server on `host:port` (or a port above) with ehdnas's functions, registered under `key`.

    It logs every session on stderr (TVM's server log: who connected, what it loaded), since whoever connects
    runs code here: a measurement is a session or two, a tuned build one per candidate timed.
    """
    from tvm.rpc.server import PopenRPCServerState

    device.init()
    return PopenRPCServerState(host, port, port + PORTS_TRIED, False, tracker, key, None, None, False)


def start_tracker(host: str, port: int) -> Any:
    """TVM's RPC tracker on `host:port` (or a port above)."""
    from tvm.rpc.tracker import PopenTrackerServerState

    return PopenTrackerServerState(host, port, port + PORTS_TRIED, silent=True)


def serve_forever(server: Any) -> None:
    """Keep `server` (a tracker or a device) running until it stops or this process is interrupted."""
    try:
        while server.thread.is_alive():
            server.thread.join(1.0)
    except KeyboardInterrupt:
        os._exit(0)  # TVM's serving threads have no stop and are not daemons: end the process itself
