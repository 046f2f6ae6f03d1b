"""Model training: one model per axis, fitted on non-idle, non-missing rows."""

from .trainer import AxisModelSet, TrainingError

__all__ = ["AxisModelSet", "TrainingError"]
