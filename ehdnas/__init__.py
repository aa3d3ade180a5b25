"""ehdnas: hardware-aware neural architecture search.

Importing this package is cheap on purpose: torch, ONNX Runtime and the other
heavy libraries are imported by the modules that need them.
"""

__version__ = "0.1.0"
