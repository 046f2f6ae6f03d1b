"""Drift per asset and axis: CUSUM and EWMA charts of the residual level, and their state.

Baselines are learned at training (:func:`fit_drift_baselines`, stored as ``drift.json`` in
the version); every score run folds its samples into the running state of each (source table,
asset, axis) — :class:`DriftTracker` — and writes it, with the ``drift`` events of drift starts
and ends, in the run's transaction (:class:`DriftStateStore`). :func:`read_drift_state` reads
the state table for reports and ``orchestrate.py drift``.
"""

from .stats import (
    BlockSums,
    DriftParameters,
    active_only,
    block_sums,
    cusum_path,
    drift_strength,
    epoch_seconds,
    ewma_limit,
    ewma_path,
    standardise,
)
from .store import DRIFT_SEVERITY, DriftStateStore, drift_table, read_drift_state
from .tracker import (
    AxisBaseline,
    AxisDriftState,
    DriftBaselines,
    DriftEpisode,
    DriftTracker,
    fit_drift_baselines,
)

__all__ = [
    "DRIFT_SEVERITY",
    "AxisBaseline",
    "AxisDriftState",
    "BlockSums",
    "DriftBaselines",
    "DriftEpisode",
    "DriftParameters",
    "DriftStateStore",
    "DriftTracker",
    "active_only",
    "block_sums",
    "cusum_path",
    "drift_strength",
    "drift_table",
    "epoch_seconds",
    "ewma_limit",
    "ewma_path",
    "fit_drift_baselines",
    "read_drift_state",
    "standardise",
]
