"""Out-of-sample residuals: each row predicted by a model that never saw its block.

The window (or its most recent ``max_rows`` rows) is cut into ``folds`` contiguous blocks in
time. For each block, every axis's family is fitted on the other blocks and predicts the
block (with the rows before it as look-back, so lagged families see real history). The
residuals of all blocks together are what the thresholds are calibrated on when
``thresholds.calibration`` is ``holdout``: they measure how far the model misses on data it
was not fitted to, which is what scoring meets.

Contiguous blocks rather than forward chaining: a forward-chained first fold is fitted on a
small share of the window, and its over-fitted residuals would inflate the thresholds of
every axis (on the Tennessee Eastman benchmark, 2.5x wider).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from frames import float_column
from ModelSelection import (
    AxisModel,
    ModelError,
    SharedMoments,
    build_model,
    fit_family,
    machine_model,
)

from .trainer import FamilySpec, TrainingError, model_view

__all__ = ["HeldOut", "machine_rows", "out_of_fold"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOut:
    """Out-of-fold residuals (and machine scores) of the calibration rows.

    Attributes
    ----------
    start:
        Position in the window of the first calibration row.
    residuals:
        Axis → residual per calibration row (NaN where idle, missing or not allowed).
    machine:
        The machine model's out-of-fold score per calibration row, or None.
    folds:
        Number of blocks.
    """

    start: int
    residuals: dict[str, np.ndarray]
    machine: np.ndarray | None
    folds: int

    @property
    def rows(self) -> int:
        """Number of calibration rows."""
        return next(iter(self.residuals.values())).size if self.residuals else 0


def machine_rows(
    frame: pd.DataFrame, axes: list[str], where: np.ndarray | None = None
) -> np.ndarray:
    """Rows the machine channel is calibrated on: some axis is running (finite and not the idle
    0, as scoring sees it: a row where every axis is idle or missing has no machine level) and
    the row is allowed (``where``, e.g. outside labelled incidents)."""
    running = np.zeros(len(frame), dtype=bool)
    for axis in axes:
        with np.errstate(invalid="ignore"):
            values = float_column(frame, axis)
            running |= np.isfinite(values) & (values != 0.0)
    return running if where is None else running & np.asarray(where, dtype=bool)


class _FoldFits:
    """Each axis's model of each fold, fold after fold: the families that offer ``fit_folds``
    fit all folds from one pass over the window (``ar``, ``cross``: the moments of each block,
    merged over the blocks a fold keeps; ``constant``: the usable values gathered once), and
    ``pca`` takes the shared moments merged the same way; the other families are fitted on
    each fold's rows. Either way the fits are those of the fold's rows."""

    def __init__(
        self,
        view: pd.DataFrame,
        specs: Mapping[str, FamilySpec],
        allowed: np.ndarray,
        edges: list[int],
    ) -> None:
        self.view = view
        self.specs = specs
        self.allowed = allowed
        self.edges = edges
        self.shared = SharedMoments.for_folds(view, list(specs), allowed, edges)
        self._folded: dict[str, Iterator[AxisModel] | None] = {}

    def model(self, axis: str, fold: int, fit_rows: np.ndarray) -> AxisModel:
        """The model of ``axis`` fitted on ``fit_rows`` (the allowed rows outside ``fold``);
        called for fold 0, 1, ... in turn. Raises ModelError as the family's ``fit``."""
        family, params = self.specs[axis]
        if axis not in self._folded:
            model = build_model(family, params)
            fit_folds = getattr(model, "fit_folds", None)
            self._folded[axis] = (
                None
                if fit_folds is None
                else fit_folds(self.view, axis, self.allowed, self.edges, self.shared)
            )
        folded = self._folded[axis]
        if folded is not None:
            return next(folded)
        return fit_family(build_model(family, params), self.view, axis, fit_rows, self.shared[fold])


def out_of_fold(
    frame: pd.DataFrame,
    specs: Mapping[str, FamilySpec],
    *,
    folds: int = 5,
    max_rows: int | None = None,
    where: np.ndarray | None = None,
    machine: str = "none",
) -> HeldOut:
    """Residuals of every axis on rows its model was not fitted to (see the module docstring).

    Parameters
    ----------
    frame:
        The prepared window: ``time_s`` and every axis, in time order. Not modified.
    specs:
        Axis → (family, params), as fitted by the training step.
    folds:
        Contiguous blocks (>= 2).
    max_rows:
        Use only the most recent ``max_rows`` rows (default all).
    where:
        Rows allowed in fits and residuals (default all), e.g. without labelled incidents.
    machine:
        Machine channel; ``pca``/``iforest`` also get out-of-fold scores.

    Raises
    ------
    TrainingError
        With fewer rows than folds, or when a fold cannot be fitted.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise TrainingError(f"folds must be an integer >= 2, got {folds!r}")
    start = 0 if max_rows is None else max(0, len(frame) - max_rows)
    window = frame if start == 0 else frame.iloc[start:]
    allowed = np.ones(len(frame), dtype=bool) if where is None else np.asarray(where, dtype=bool)
    allowed = allowed[start:]
    n = len(window)
    if n < folds * 2:
        raise TrainingError(
            f"{n} rows are too few for {folds} calibration folds; widen the training window "
            "or lower model.folds"
        )
    axes = list(specs)
    view = model_view(window, axes)
    edges = np.linspace(0, n, folds + 1).round().astype(int)
    residuals = {axis: np.full(n, np.nan) for axis in axes}
    machine_cls = machine_model(machine)
    machine_scores = np.full(n, np.nan) if machine_cls is not None else None
    scored_rows = machine_rows(view, axes, allowed) if machine_cls is not None else None
    fits = _FoldFits(view, specs, allowed, edges.tolist())
    actual = {axis: float_column(view, axis) for axis in axes}
    with np.errstate(invalid="ignore"):
        scored = {axis: np.isfinite(v) & (v != 0.0) & allowed for axis, v in actual.items()}
    for fold, (lo, hi) in enumerate(itertools.pairwise(edges.tolist())):
        fit_rows = allowed.copy()
        fit_rows[lo:hi] = False
        parts: dict[int, pd.DataFrame] = {}  # the block with its look-back, per look-back
        for axis in axes:
            family, _ = specs[axis]
            try:
                model = fits.model(axis, fold, fit_rows)
            except ModelError as exc:
                raise TrainingError(
                    f"cannot fit axis {axis!r} ({family}) without rows {lo}-{hi} of the "
                    f"calibration window: {exc}; widen the window or lower model.folds"
                ) from exc
            context = max(lo - model.lookback_, 0)
            if context not in parts:
                parts[context] = view.iloc[context:hi]
            predicted = model.predict(parts[context], axis)[lo - context :]
            block = slice(lo, hi)
            residuals[axis][block] = np.where(
                scored[axis][block], actual[axis][block] - predicted, np.nan
            )
        if machine_cls is not None and machine_scores is not None and scored_rows is not None:
            try:
                fitted = machine_cls().fit(view, axes, where=fit_rows)
            except ModelError as exc:
                raise TrainingError(
                    f"cannot fit the {machine} machine channel fold: {exc}"
                ) from exc
            scores = fitted.score(view.iloc[lo:hi])
            machine_scores[lo:hi] = np.where(scored_rows[lo:hi], scores, np.nan)
    logger.debug("out-of-fold residuals of %d rows in %d folds from row %d", n, folds, start)
    return HeldOut(start=start, residuals=residuals, machine=machine_scores, folds=folds)
