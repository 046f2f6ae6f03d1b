"""Model training: a model per axis (each its own family), a machine model, held-out residuals."""

from .crossval import HeldOut, out_of_fold
from .trainer import AxisModelSet, FamilySpec, TrainingError

__all__ = ["AxisModelSet", "FamilySpec", "HeldOut", "TrainingError", "out_of_fold"]
