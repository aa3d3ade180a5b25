"""`tracker`, `device` and `devices`: a farm of remote devices on TVM's RPC tracker (backends.remote).

These commands import no torch and no search code, so a device with only its
runtimes installed runs `ehdnas device`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from backends.remote.servers import DEVICE_PORT, HOST, TRACKER_PORT
from ehdnas.cli.app import JsonOpt, app, console, err

COMMANDS = ("tracker", "device", "devices")  # what an install without torch still runs

TrackerAddressOpt = Annotated[str, typer.Option("--tracker", help="The RPC tracker's HOST:PORT.")]
HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]


@app.command()
def tracker(
    host: HostOpt = HOST,
    port: Annotated[int, typer.Option("--port", help="TCP port (the next free one up to +20).")] = TRACKER_PORT,
) -> None:
    """Run TVM's RPC tracker: devices register with it under a key, hosts ask it for a free device of a key."""
    from backends.remote.servers import serve_forever, start_tracker

    server = start_tracker(host, port)
    err.print(f"RPC tracker on {host}:{server.port}; Ctrl-C stops it", markup=False, highlight=False)
    serve_forever(server)


@app.command()
def device(
    tracker: TrackerAddressOpt,
    key: Annotated[str, typer.Option("--key", help="The key this device registers under (one per kind of device).")],
    host: HostOpt = HOST,
    port: Annotated[int, typer.Option("--port", help="TCP port (the next free one up to +20).")] = DEVICE_PORT,
) -> None:
    """Serve this machine as a device: TVM's RPC server with ehdnas's measurement functions for its runtimes."""
    from backends.remote.address import parse_tracker
    from backends.remote.servers import SECURITY_WARNING, serve_forever, start_device

    address = parse_tracker(tracker)
    server = start_device(address, key, host, port)
    err.print(SECURITY_WARNING.format(host=server.host, port=server.port), style="bold red", highlight=False)
    err.print(f"device {key!r} on {server.host}:{server.port}, registered with the tracker {tracker}; Ctrl-C stops it",
              markup=False, highlight=False)  # fmt: skip
    serve_forever(server)


@app.command()
def devices(tracker: TrackerAddressOpt, as_json: JsonOpt = False) -> None:
    """List the tracker's keys: devices free and busy, and what each free device reports (runtimes, fingerprint)."""
    from backends.remote.address import parse_tracker
    from backends.remote.client import list_devices

    rows = list_devices(parse_tracker(tracker))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("key", "devices", "free", "busy", "pending", "runtimes", "device")
    for row in rows:
        for report in row["devices"] or [{}]:
            table.add_row(row["key"], str(row["total"]), str(row["free"]), str(row["busy"]), str(row["pending"]),
                          Text(_runtimes(report)), Text(_fingerprint(report)))  # fmt: skip
    console.print(table)


def _runtimes(report: dict) -> str:
    if "error" in report:
        return report["error"]
    return " ".join(
        f"{name} {' '.join(runtime['host']['libraries'].values())}"
        for name, runtime in report.get("runtimes", {}).items()
        if runtime["available"]
    )


def _fingerprint(report: dict) -> str:
    host = next((r["host"] for r in report.get("runtimes", {}).values() if r["available"]), None)
    if host is None:
        return ""
    return f"{host['cpu']}, {host['cores']} cores, {host['system']} {host['machine']}, Python {host['python']}"
