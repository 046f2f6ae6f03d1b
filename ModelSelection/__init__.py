"""Model selection: the ``model.type`` name → per-axis model family table."""

from .config import ModelConfig
from .families import AxisModel, LinearTrend, ModelError
from .selector import MODEL_FAMILIES, UnknownModelError, select_model

__all__ = [
    "MODEL_FAMILIES",
    "AxisModel",
    "LinearTrend",
    "ModelConfig",
    "ModelError",
    "UnknownModelError",
    "select_model",
]
