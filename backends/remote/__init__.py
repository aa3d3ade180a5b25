"""Measuring on another machine through TVM's RPC tracker: the device side (`device`, `servers`) and the host's.

A device runs a TVM RPC server registered under a key with the tracker; its
init registers ehdnas's measurement functions (`device`). The host asks the
tracker for a free device of a key, uploads the model (or the library built
for the device) and calls them (`client`). The device side imports no torch,
no search code and no server: it installs with the runtimes it times alone.
"""

from backends.remote.address import RemoteAddress

__all__ = ["RemoteAddress"]
