"""Model selection: the family table, the families, and choosing one per axis by validation."""

from ._base import AxisModel, ModelError, SharedMoments, fold_moments
from ._linear import LinearTrend, fit_line
from .config import DEFAULT_CANDIDATES, ModelConfig, TuningConfig
from .families import ARModel, ConstantLevel, CrossAxis, PCAReconstruction, PiecewiseLinear
from .machine import MACHINE_MODELS, IsolationForestMachine, PCAMachine, machine_model
from .selector import (
    GRIDS,
    MODEL_FAMILIES,
    SPACES,
    AxisChoice,
    Selection,
    UnknownModelError,
    build_model,
    fit_family,
    robust_spread,
    select_families,
    select_model,
)

__all__ = [
    "DEFAULT_CANDIDATES",
    "GRIDS",
    "MACHINE_MODELS",
    "MODEL_FAMILIES",
    "SPACES",
    "ARModel",
    "AxisChoice",
    "AxisModel",
    "ConstantLevel",
    "CrossAxis",
    "IsolationForestMachine",
    "LinearTrend",
    "ModelConfig",
    "ModelError",
    "PCAMachine",
    "PCAReconstruction",
    "PiecewiseLinear",
    "Selection",
    "SharedMoments",
    "TuningConfig",
    "UnknownModelError",
    "build_model",
    "fit_family",
    "fit_line",
    "fold_moments",
    "machine_model",
    "robust_spread",
    "select_families",
    "select_model",
]
