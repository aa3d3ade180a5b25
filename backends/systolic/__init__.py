"""The systolic-array accelerator targets: accelerator descriptions, ONNX to layers, two cost engines, the runner."""

from backends.systolic import runner as _runner  # noqa: F401  (registers "systolic-<preset>")
