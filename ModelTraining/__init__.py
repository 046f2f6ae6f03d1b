"""Model training: a model per axis (each its own family), a machine model, held-out residuals."""

from .crossval import HeldOut, machine_rows, out_of_fold
from .trainer import AxisModelSet, FamilySpec, TrainingError

__all__ = ["AxisModelSet", "FamilySpec", "HeldOut", "TrainingError", "machine_rows", "out_of_fold"]
