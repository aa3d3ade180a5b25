"""Performance models learned from the measurement store.

Library use needs only this package and a predictor file::

    from perf_models import load_predictor, HardwareLoss
    predictor = load_predictor("ort-cpu.pt")         # a torch.nn.Module
    latency_ms = predictor(torch.softmax(alpha, -1))  # alpha: (28, 8) for DARTS; differentiable
"""

from perf_models.loss import FORMS, HardwareLoss
from perf_models.predictor import Predictor, load_predictor

__all__ = ["FORMS", "HardwareLoss", "Predictor", "load_predictor"]
