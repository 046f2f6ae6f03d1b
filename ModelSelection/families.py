"""The model families besides the seed's line: constant, spline, ar, cross and pca.

Each follows :class:`ModelSelection.AxisModel`: hyperparameters in ``__init__``, learned state
in attributes ending in ``_``, ``fit(frame, axis, where)`` / ``predict(frame, axis)`` /
``to_dict`` / ``from_dict``, what it reads (``inputs_``) and how many earlier rows it needs
(``lookback_``), and ``shift_gain()``: the share of a sustained offset of the axis that stays in
its residual (1 for a model that never sees the axis's own values; ``1 - sum(phi)`` for an
autoregression, which learns to follow a level it is shown). Selection divides the held-out
residual spread by it, so a family that hides a shift by following it cannot win by
predicting the next sample well.

- ``constant``: the median of the usable values.
- ``spline``: continuous piecewise-linear in time with ``knots`` evenly spaced interior knots;
  beyond the training window it holds its end values (no extrapolated trend).
- ``ar``: the axis from its own last ``lags`` samples (and, with ``exog``, the other axes at the
  same time), ridge-regularised.
- ``cross``: the axis from the other axes at the same time, ridge-regularised (``alpha``).
- ``pca``: the axis's reconstruction from the first ``components`` principal components of the
  standardised axes.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from Thresholding import domain_median, median_of
from Thresholding.selection import SMALL

from ._base import (
    BLOCK_ROWS,
    FamilyBase,
    ModelError,
    Moments,
    SharedMoments,
    as_float_column,
    blocked_moments,
    check_family,
    check_fitted,
    fold_moments,
    number,
    ridge_solve,
    stacker,
    usable,
)
from ._linear import TIME_COLUMN

__all__ = ["ARModel", "ConstantLevel", "CrossAxis", "PCAReconstruction", "PiecewiseLinear"]


def _mask(where: np.ndarray | None, size: int) -> np.ndarray:
    """A fresh boolean row mask from ``where`` (all rows when None); the caller may edit it."""
    if where is None:
        return np.ones(size, dtype=bool)
    mask = np.asarray(where)
    if mask.dtype != np.bool_ or mask.shape != (size,):
        raise ModelError(
            f"where must be a boolean mask with one flag per row ({size}), got "
            f"{mask.dtype} of shape {mask.shape}"
        )
    return mask.copy()


def _require_rows(count: int, needed: int, family: str, axis: str) -> None:
    if count < needed:
        raise ModelError(
            f"{family} model of axis {axis!r} needs at least {needed} usable rows, got {count}"
        )


def _positive_int(value: Any, name: str, family: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ModelError(f"{family}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _non_negative(value: Any, name: str, family: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ModelError(f"{family}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def _floats(
    data: Mapping[str, Any], key: str, family: str, length: int | None = None
) -> np.ndarray:
    value = data.get(key)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.asarray([np.nan])
    if (
        array.ndim == 0
        or not np.isfinite(array).all()
        or (length is not None and array.size != length)
    ):
        raise ModelError(
            f"{family} model key {key!r} must be a list of finite numbers"
            + (f" of length {length}" if length is not None else "")
            + f", got {value!r}; re-train to regenerate models.json"
        )
    return array


def _names(data: Mapping[str, Any], key: str, family: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelError(
            f"{family} model key {key!r} must be a list of column names, got {value!r}"
        )
    return tuple(value)


def _filled(values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` with unusable entries (NaN, inf, idle 0) replaced by ``fill``."""
    return np.where(usable(values), values, fill)


class ConstantLevel(FamilyBase):
    """A robust level: the median of the axis's usable values.

    Attributes
    ----------
    level_ : float
    """

    family: ClassVar[str] = "constant"

    def fit(self, frame: pd.DataFrame, axis: str, where: np.ndarray | None = None) -> ConstantLevel:
        """Learn the median of the usable rows of ``axis`` (within ``where``); ``self``.

        Raises
        ------
        ModelError
            If the column is missing or has no usable row.
        """
        values = as_float_column(frame, axis)
        rows = usable(values)  # a fresh mask: narrowed in place
        if where is not None:
            rows &= _mask(where, values.size)
        count = int(np.count_nonzero(rows))
        _require_rows(count, 1, self.family, axis)
        # np.median of values[rows], without copying them (see Thresholding.selection).
        self.level_ = domain_median(lambda r: values[r][rows[r]], values.size, count)
        return self

    def fit_folds(
        self,
        frame: pd.DataFrame,
        axis: str,
        where: np.ndarray | None,
        edges: Sequence[int],
        shared: Sequence[SharedMoments] | None = None,
    ) -> Iterator[ConstantLevel]:
        """For each block ``edges[i]:edges[i + 1]`` in turn, the level of the rows of ``where``
        outside it: the same as ``fit`` with those rows. The usable values are gathered once,
        block by block, and each fold takes the median of the others', sorted (up to
        :data:`Thresholding.selection.SMALL` values, where ``fit`` sorts a gathered copy as
        well; beyond, each fold is fitted as ``fit`` does, without copies).

        Raises
        ------
        ModelError
            As ``fit``, when the fold that is due has no usable row.
        """
        values = as_float_column(frame, axis)
        rows = usable(values) & _mask(where, values.size)
        if np.count_nonzero(rows) > SMALL:
            for lo, hi in itertools.pairwise(edges):
                outside = rows.copy()
                outside[lo:hi] = False
                yield ConstantLevel().fit(frame, axis, outside)
            return
        blocks = [values[lo:hi][rows[lo:hi]] for lo, hi in itertools.pairwise(edges)]
        for left_out in range(len(blocks)):
            kept = [block for number, block in enumerate(blocks) if number != left_out]
            _require_rows(sum(block.size for block in kept), 1, self.family, axis)
            model = ConstantLevel()
            model.level_ = median_of(np.concatenate(kept))
            yield model

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        check_fitted(self, "level_")
        return np.full(len(frame), self.level_)

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "level_")
        return {"family": self.family, "level": self.level_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConstantLevel:
        check_family(data, cls.family)
        model = cls()
        model.level_ = number(data, "level", cls.family)
        return model


class PiecewiseLinear(FamilyBase):
    """A continuous piecewise-linear curve in time, flat beyond the training window.

    The curve is a sum of hat functions on ``knots + 2`` evenly spaced knots (the first and
    last fitted times included); their weights are the curve's values at the knots, fitted by
    least squares with a small ridge penalty for stability. Each row touches two hat
    functions, so the normal equations are accumulated in one pass (tridiagonal) and a 10 M-row
    window costs about as much as the line.

    Parameters
    ----------
    knots:
        Interior knots (default 4).
    alpha:
        Ridge penalty relative to each hat function's weight (default 1e-6).

    Attributes
    ----------
    knot_times_ : numpy.ndarray
        All knots, first and last fitted time included.
    coef_ : numpy.ndarray
        The curve's value at each knot.
    """

    family: ClassVar[str] = "spline"

    def __init__(self, knots: int = 4, alpha: float = 1e-6) -> None:
        self.knots = knots
        self.alpha = alpha

    def params(self) -> dict[str, Any]:
        return {"knots": self.knots, "alpha": self.alpha}

    @property
    def inputs_(self) -> tuple[str, ...]:
        return (TIME_COLUMN,)

    def _segments(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per time: the knot interval (left knot index) and the weight of its right knot."""
        knots = self.knot_times_
        clipped = np.clip(times, knots[0], knots[-1])
        segment = np.clip(np.searchsorted(knots, clipped, side="right") - 1, 0, knots.size - 2)
        weight = (clipped - knots[segment]) / (knots[segment + 1] - knots[segment])
        return segment, weight

    def fit(
        self, frame: pd.DataFrame, axis: str, where: np.ndarray | None = None
    ) -> PiecewiseLinear:
        """Fit the curve to the usable rows of ``axis`` (within ``where``); ``self``.

        Raises
        ------
        ModelError
            On bad parameters, missing columns, or fewer usable rows than knots + 2.
        """
        knots = _positive_int(self.knots, "knots", self.family, minimum=0)
        alpha = _non_negative(self.alpha, "alpha", self.family)
        times = as_float_column(frame, TIME_COLUMN)
        values = as_float_column(frame, axis)
        rows = usable(values) & np.isfinite(times) & _mask(where, values.size)
        count = int(np.count_nonzero(rows))
        _require_rows(count, knots + 2, self.family, axis)
        t, y = times[rows], values[rows]
        first, last = float(t.min()), float(t.max())
        self.knot_times_ = np.linspace(first, last if last > first else first + 1.0, knots + 2)
        segment, right = self._segments(t)
        left = 1.0 - right
        size = knots + 2
        diagonal = np.bincount(segment, left * left, size) + np.bincount(
            segment + 1, right * right, size
        )
        off = np.bincount(segment, left * right, size - 1)
        gram = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
        moment = np.bincount(segment, left * y, size) + np.bincount(segment + 1, right * y, size)
        # A knot no row reaches (a gap in the data) takes its neighbours' line through the tiny
        # absolute penalty; the relative one keeps the fit scale-free elsewhere.
        penalty = alpha * diagonal + 1e-12 * max(1.0, float(diagonal.max()))
        self.coef_ = np.linalg.solve(gram + np.diag(penalty), moment)
        return self

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        check_fitted(self, "coef_")
        times = as_float_column(frame, TIME_COLUMN)
        out = np.empty(times.size)
        # Block by block: the half-dozen temporaries per time stay in the CPU cache.
        for start in range(0, times.size, BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            segment, right = self._segments(times[rows])
            block = self.coef_[segment] * (1.0 - right) + self.coef_[segment + 1] * right
            block[~np.isfinite(times[rows])] = np.nan
            out[rows] = block
        return out

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "coef_")
        return {
            "family": self.family,
            **self.params(),
            "knot_times": self.knot_times_.tolist(),
            "coef": self.coef_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PiecewiseLinear:
        check_family(data, cls.family)
        model = cls(knots=data.get("knots", 4), alpha=data.get("alpha", 1e-6))
        knots = _positive_int(model.knots, "knots", cls.family, minimum=0)
        model.knot_times_ = _floats(data, "knot_times", cls.family, knots + 2)
        model.coef_ = _floats(data, "coef", cls.family, knots + 2)
        return model


def _shift_into(out: np.ndarray, array: np.ndarray, lag: int, start: int) -> None:
    """Write ``array[start - lag : start - lag + out.size]`` into ``out`` (a column of a block),
    NaN where that reaches before the first row: no temporary column per input."""
    stop = start + out.size
    first = max(start - lag, 0)
    head = min(first - (start - lag), out.size)  # rows before the first row of ``array``
    out[:head] = np.nan
    if head < out.size:
        out[head:] = array[first : stop - lag]


def _usable_lagged(flags: np.ndarray, lag: int) -> np.ndarray:
    """Per row, whether the value ``lag`` rows earlier is usable (``flags``: per row, whether its
    own value is), False where that reaches before the first row."""
    if lag == 0:
        return flags
    out = np.zeros(flags.size, dtype=bool)
    out[lag:] = flags[: max(flags.size - lag, 0)]
    return out


class _Regression(FamilyBase):
    """Shared fit and prediction of the ridge families: target ~ (column, lag) inputs."""

    family: ClassVar[str]

    @property
    def inputs_(self) -> tuple[str, ...]:
        """The other axes read (lags of the axis itself are not columns of their own)."""
        return tuple(getattr(self, "others_", ()))

    def _inputs(self, frame: pd.DataFrame, axis: str) -> list[tuple[np.ndarray, int]]:
        """The inputs as (column values, lag in rows)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "coef_")
        return {
            "family": self.family,
            **self.params(),
            "others": list(self.others_),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "fill": self.fill_.tolist(),
        }

    def _fit_ridge(
        self,
        frame: pd.DataFrame,
        axis: str,
        where: np.ndarray | None,
        alpha: float,
        needed: int,
        shared: SharedMoments | None = None,
    ) -> None:
        inputs = self._inputs(frame, axis)
        names = self.inputs_
        if (
            shared is not None
            and all(lag == 0 for _, lag in inputs)
            and shared.covers([*names, axis])
        ):
            moments = shared.moments([*names, axis])
        else:
            moments = self._moments(frame, axis, inputs, where)
        self._solve(moments, alpha, needed, axis)

    def _solve(self, moments: Moments, alpha: float, needed: int, axis: str) -> None:
        _require_rows(moments.n, needed, self.family, axis)
        # Means over the fitted rows: what an unusable input is replaced by at prediction.
        self.fill_ = moments.mean[:-1].copy()
        self.coef_, self.intercept_ = ridge_solve(moments, alpha)

    def _settings(self, frame: pd.DataFrame, axis: str) -> tuple[float, int]:
        """Check the parameters and set ``others_``; the ridge penalty and the rows needed."""
        raise NotImplementedError

    def fit_folds(
        self,
        frame: pd.DataFrame,
        axis: str,
        where: np.ndarray | None,
        edges: Sequence[int],
        shared: Sequence[SharedMoments] | None = None,
    ) -> Iterator[Self]:
        """For each block ``edges[i]:edges[i + 1]`` in turn, a copy of this model fitted on the
        rows of ``where`` outside the block: the same fits as ``fit`` with those rows, from one
        pass over the window (see :func:`ModelSelection.fold_moments`). ``shared`` (one per
        block, :meth:`SharedMoments.for_folds`) serves the joint families.

        Raises
        ------
        ModelError
            As ``fit``, when the fold that is due cannot be fitted.
        """
        alpha, needed = self._settings(frame, axis)
        inputs = self._inputs(frame, axis)
        names = [*self.inputs_, axis]
        joint = (
            shared is not None
            and getattr(self, "joint", False)
            and all(lag == 0 for _, lag in inputs)
            and shared[0].covers(names)
        )
        folds = (
            None
            if joint
            else fold_moments(*self._design(frame, axis, inputs, where), edges, finite=True)
        )
        for fold in range(len(edges) - 1):
            model = copy.copy(self)
            assert folds is not None or shared is not None
            moments = folds[fold] if folds is not None else shared[fold].moments(names)
            model._solve(moments, alpha, needed, axis)
            yield model

    @staticmethod
    def _moments(
        frame: pd.DataFrame,
        axis: str,
        inputs: list[tuple[np.ndarray, int]],
        where: np.ndarray | None,
    ) -> Moments:
        """The moments of the fitted rows: within ``where``, target and inputs usable."""
        return blocked_moments(*_Regression._design(frame, axis, inputs, where), finite=True)

    @staticmethod
    def _design(
        frame: pd.DataFrame,
        axis: str,
        inputs: list[tuple[np.ndarray, int]],
        where: np.ndarray | None,
    ) -> tuple[Callable[[int, int], np.ndarray], np.ndarray, int]:
        """The block function of ``[inputs | target]``, the fitted rows and the width."""
        target = as_float_column(frame, axis)
        size = target.size
        rows = usable(target) & _mask(where, size)
        # usable() of each input column, once (AR's lags share one)
        flags: dict[int, np.ndarray] = {}
        for array, lag in inputs:
            if id(array) not in flags:
                flags[id(array)] = usable(array)
            rows &= _usable_lagged(flags[id(array)], lag)
        width = len(inputs) + 1

        def block(start: int, stop: int) -> np.ndarray:
            # The inputs' columns, then the target's (what np.column_stack of them gives).
            out = np.empty((stop - start, width))
            for column, (array, lag) in enumerate(inputs):
                _shift_into(out[:, column], array, lag, start)
            out[:, -1] = target[start:stop]
            return out

        return block, rows, width

    def _predict_ridge(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        check_fitted(self, "coef_")
        size = len(frame)
        inputs = self._inputs(frame, axis)
        out = np.empty(size)
        # Block by block, in one reused buffer: the few input columns of a block stay in the
        # CPU cache, and no block allocates fresh memory.
        buffer = np.empty((min(size, BLOCK_ROWS), len(inputs)))
        for start in range(0, size, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, size)
            block = buffer[: stop - start]
            for column, (array, lag) in enumerate(inputs):
                _shift_into(block[:, column], array, lag, start)
            np.copyto(block, self.fill_, where=~usable(block))
            out[start:stop] = block @ self.coef_ + self.intercept_
        return out


class ARModel(_Regression):
    """The axis from its own previous ``lags`` samples (and, with ``exog``, the other axes).

    Lags count rows, not seconds. A lag that is missing or idle is replaced by its training
    mean, so the first samples after a stop get a prediction too.

    Parameters
    ----------
    lags:
        Number of previous samples (default 2).
    exog:
        Also use the other axes at the same time (default False).
    alpha:
        Ridge penalty relative to each input's variance (default 1e-3).

    Attributes
    ----------
    others_ : tuple[str, ...]
        The other axes used (empty without ``exog``).
    coef_, intercept_, fill_ :
        Coefficients of lags 1..p then of ``others_``; intercept; fill value per input.
    """

    family: ClassVar[str] = "ar"

    def __init__(self, lags: int = 2, exog: bool = False, alpha: float = 1e-3) -> None:
        self.lags = lags
        self.exog = exog
        self.alpha = alpha

    def params(self) -> dict[str, Any]:
        return {"lags": self.lags, "exog": self.exog, "alpha": self.alpha}

    @property
    def lookback_(self) -> int:
        return int(self.lags)

    def shift_gain(self) -> float:
        check_fitted(self, "coef_")
        return float(1.0 - self.coef_[: int(self.lags)].sum())

    def _inputs(self, frame: pd.DataFrame, axis: str) -> list[tuple[np.ndarray, int]]:
        values = as_float_column(frame, axis)
        lagged = [(values, lag) for lag in range(1, int(self.lags) + 1)]
        return lagged + [(as_float_column(frame, other), 0) for other in self.others_]

    def fit(self, frame: pd.DataFrame, axis: str, where: np.ndarray | None = None) -> ARModel:
        """Fit on rows whose value, lags (and other axes) are usable; ``self``.

        Raises
        ------
        ModelError
            On bad parameters, missing columns, or too few usable rows.
        """
        self._fit_ridge(frame, axis, where, *self._settings(frame, axis))
        return self

    def _settings(self, frame: pd.DataFrame, axis: str) -> tuple[float, int]:
        lags = _positive_int(self.lags, "lags", self.family)
        alpha = _non_negative(self.alpha, "alpha", self.family)
        if not isinstance(self.exog, bool):
            raise ModelError(f"{self.family}: exog must be true or false, got {self.exog!r}")
        self.others_ = _other_axes(frame, axis) if self.exog else ()
        return alpha, lags + len(self.others_) + 2

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        """One-step prediction of every row (the first ``lags`` rows use the fill values)."""
        return self._predict_ridge(frame, axis)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ARModel:
        check_family(data, cls.family)
        model = cls(
            lags=data.get("lags", 2), exog=data.get("exog", False), alpha=data.get("alpha", 1e-3)
        )
        lags = _positive_int(model.lags, "lags", cls.family)
        model.others_ = _names(data, "others", cls.family)
        width = lags + len(model.others_)
        model.coef_ = _floats(data, "coef", cls.family, width)
        model.fill_ = _floats(data, "fill", cls.family, width)
        model.intercept_ = number(data, "intercept", cls.family)
        return model


class CrossAxis(_Regression):
    """The axis from the other axes at the same time (ridge regression).

    Parameters
    ----------
    alpha:
        Ridge penalty relative to each input's variance (default 0.01).

    Attributes
    ----------
    others_ : tuple[str, ...]
        The other axes, in frame order.
    coef_, intercept_, fill_ :
        One coefficient and fill value per other axis; the intercept.
    """

    family: ClassVar[str] = "cross"
    joint: ClassVar[bool] = True

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _inputs(self, frame: pd.DataFrame, axis: str) -> list[tuple[np.ndarray, int]]:
        return [(as_float_column(frame, other), 0) for other in self.others_]

    def fit(
        self,
        frame: pd.DataFrame,
        axis: str,
        where: np.ndarray | None = None,
        shared: SharedMoments | None = None,
    ) -> CrossAxis:
        """Fit on rows where the axis and every other axis are usable; ``self``.

        ``shared`` (the joint moments of the same rows) spares the pass over the window.

        Raises
        ------
        ModelError
            On a bad alpha, a frame with no other axis, or too few usable rows.
        """
        self._fit_ridge(frame, axis, where, *self._settings(frame, axis), shared)
        return self

    def _settings(self, frame: pd.DataFrame, axis: str) -> tuple[float, int]:
        alpha = _non_negative(self.alpha, "alpha", self.family)
        self.others_ = _other_axes(frame, axis)
        if not self.others_:
            raise ModelError(f"cross model of axis {axis!r} needs at least one other axis")
        return alpha, len(self.others_) + 2

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        return self._predict_ridge(frame, axis)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrossAxis:
        check_family(data, cls.family)
        model = cls(alpha=data.get("alpha", 0.01))
        model.others_ = _names(data, "others", cls.family)
        model.coef_ = _floats(data, "coef", cls.family, len(model.others_))
        model.fill_ = _floats(data, "fill", cls.family, len(model.others_))
        model.intercept_ = number(data, "intercept", cls.family)
        return model


def _other_axes(frame: pd.DataFrame, axis: str) -> tuple[str, ...]:
    """Float columns of ``frame`` other than ``axis`` and ``time_s``: the other axes."""
    return tuple(
        str(c)
        for c in frame.columns
        if c != axis and c != TIME_COLUMN and pd.api.types.is_float_dtype(frame[c])
    )


class PCAReconstruction(FamilyBase):
    """The axis as reconstructed from the first principal components of all axes.

    The axes are standardised with their training mean and standard deviation; the residual
    of axis ``j`` is its value minus its reconstruction from ``components`` components (the
    per-axis part of the Q statistic). Unusable readings are replaced by the training mean.

    Parameters
    ----------
    components:
        Principal components kept (default 1; at most the number of axes − 1).

    Attributes
    ----------
    columns_ : tuple[str, ...]
        Every axis, in frame order; ``mean_``, ``scale_`` per axis; ``loadings_`` (axes ×
        components); ``variance_`` per component.
    """

    family: ClassVar[str] = "pca"
    joint: ClassVar[bool] = True

    def __init__(self, components: int = 1) -> None:
        self.components = components

    def params(self) -> dict[str, Any]:
        return {"components": self.components}

    @property
    def inputs_(self) -> tuple[str, ...]:
        return tuple(c for c in getattr(self, "columns_", ()) if c != getattr(self, "axis_", None))

    @property
    def lookback_(self) -> int:
        return 0

    def shift_gain(self) -> float:
        check_fitted(self, "loadings_")
        row = self.loadings_[self.columns_.index(self.axis_)]
        return float(1.0 - row @ row)

    def fit(
        self,
        frame: pd.DataFrame,
        axis: str,
        where: np.ndarray | None = None,
        shared: SharedMoments | None = None,
    ) -> PCAReconstruction:
        """Fit the components on rows where every axis is usable; ``self``.

        ``shared`` (the joint moments of the same rows) spares the pass over the window.

        Raises
        ------
        ModelError
            On a bad component count, fewer than two axes, or too few usable rows.
        """
        columns = (axis, *_other_axes(frame, axis))
        components = _positive_int(self.components, "components", self.family)
        if components >= len(columns):
            raise ModelError(
                f"pca model of axis {axis!r}: components must be below the number of axes "
                f"({len(columns)}), got {components}"
            )
        if shared is not None and shared.covers(columns):
            moments = shared.moments(columns)
        else:
            arrays = [as_float_column(frame, c) for c in columns]
            rows = _mask(where, arrays[0].size)
            for array in arrays:
                rows &= usable(array)
            moments = blocked_moments(stacker(arrays), rows, len(columns))
        _require_rows(moments.n, len(columns) + 1, self.family, axis)
        covariance = moments.comoment / max(moments.n - 1, 1)
        scale = np.sqrt(np.diag(covariance))
        scale[scale <= 0] = 1.0
        correlation = covariance / np.outer(scale, scale)
        variance, vectors = np.linalg.eigh(correlation)
        order = np.argsort(variance)[::-1][:components]
        self.axis_ = str(axis)
        self.columns_ = tuple(str(c) for c in columns)
        self.mean_ = moments.mean.copy()
        self.scale_ = scale
        # C order, as from_dict rebuilds it: NumPy multiplies other layouts in another order
        # (the last bits of a prediction would differ between training and scoring).
        self.loadings_ = np.ascontiguousarray(vectors[:, order])
        self.variance_ = variance[order]
        return self

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        check_fitted(self, "loadings_")
        index = self.columns_.index(self.axis_)
        weights = self.loadings_ @ self.loadings_[index]  # row `index` of P Pᵀ
        used = [
            (as_float_column(frame, column), mean, scale, weight)
            for column, mean, scale, weight in zip(
                self.columns_, self.mean_, self.scale_, weights, strict=True
            )
            if weight != 0.0
        ]
        size = len(frame)
        out = np.empty(size)
        # Block by block: each column's temporaries stay in the CPU cache.
        for start in range(0, size, BLOCK_ROWS):
            rows = slice(start, min(start + BLOCK_ROWS, size))
            standardised = np.zeros(rows.stop - start)
            for values, mean, scale, weight in used:
                standardised += weight * (_filled(values[rows], mean) - mean) / scale
            out[rows] = self.mean_[index] + self.scale_[index] * standardised
        return out

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "loadings_")
        return {
            "family": self.family,
            **self.params(),
            "axis": self.axis_,
            "columns": list(self.columns_),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "loadings": self.loadings_.tolist(),
            "variance": self.variance_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PCAReconstruction:
        check_family(data, cls.family)
        model = cls(components=data.get("components", 1))
        components = _positive_int(model.components, "components", cls.family)
        model.columns_ = _names(data, "columns", cls.family)
        axis = data.get("axis")
        if axis not in model.columns_:
            raise ModelError(f"pca model key 'axis' must be one of its columns, got {axis!r}")
        model.axis_ = str(axis)
        width = len(model.columns_)
        model.mean_ = _floats(data, "mean", cls.family, width)
        model.scale_ = _floats(data, "scale", cls.family, width)
        model.loadings_ = _loadings(data, width, components)
        model.variance_ = _floats(data, "variance", cls.family, components)
        return model


def _loadings(data: Mapping[str, Any], width: int, components: int) -> np.ndarray:
    rows = data.get("loadings")
    try:
        array = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.asarray([np.nan])
    if array.shape != (width, components) or not np.isfinite(array).all():
        raise ModelError(
            f"pca model key 'loadings' must be a {width} x {components} matrix of finite "
            "numbers; re-train to regenerate models.json"
        )
    return array


def explained_components(frame: pd.DataFrame, axes: Sequence[str], share: float) -> int:
    """Fewest components whose correlation-matrix eigenvalues explain ``share`` of the variance."""
    return components_for_share(explained_variance(frame, axes), share)


def explained_variance(frame: pd.DataFrame, axes: Sequence[str]) -> np.ndarray | None:
    """Cumulative share of the variance of the standardised axes explained by the first 1, 2, ...
    principal components, over the rows where every axis is usable; None when that is
    undefined (fewer than two axes or three rows)."""
    if len(axes) < 2:
        return None
    arrays = [as_float_column(frame, c) for c in axes]
    rows = np.ones(arrays[0].size, dtype=bool)
    for array in arrays:
        rows &= usable(array)
    data = np.column_stack([array[rows] for array in arrays])
    if data.shape[0] < 3:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):  # a flat axis: no correlation, 0
        correlation = np.corrcoef(data, rowvar=False)
    correlation = np.nan_to_num(correlation, nan=0.0)
    variance = np.sort(np.linalg.eigvalsh(correlation))[::-1]
    return np.cumsum(variance) / max(variance.sum(), 1e-300)


def components_for_share(cumulative: np.ndarray | None, share: float) -> int:
    """Fewest components that explain ``share`` of the variance (see :func:`explained_variance`);
    at least 1 and at most the number of axes − 1."""
    if cumulative is None:
        return 1
    axes = cumulative.size
    return int(min(axes - 1, max(1, math.ceil(np.searchsorted(cumulative, share) + 1))))
