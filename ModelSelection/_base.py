"""What every model family shares: the protocol, usable-row masks, and a blocked ridge fit.

A *family* models one axis of a prepared frame (``time_s`` plus one float column per axis)
and gives the expected value of every row; the residual is actual − expected. Families
declare what they read besides the axis itself (``inputs_``: ``time_s`` or other axes) and how
many earlier rows a prediction needs (``lookback_``), so that scoring can supply them.

Usable rows
    A value is usable when it is finite and not exactly 0.0 (0 is the idle reading). Fits use
    rows whose target and every input are usable; predictions fill an unusable *input* with
    its training mean (so one missing reading does not blank the other axes) and leave the
    residual of an unusable *target* to the caller (NaN: idle or missing).

Blocked moments
    Linear families fit from the means and centred co-moments of ``[features | target]``,
    accumulated block by block and merged (Chan, Golub and LeVeque), so a 10 M-row window is
    never copied into a full design matrix.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from frames import float_column

__all__ = [
    "BLOCK_ROWS",
    "AxisModel",
    "FamilyBase",
    "ModelError",
    "Moments",
    "SharedMoments",
    "as_float_column",
    "blocked_moments",
    "check_family",
    "check_fitted",
    "fold_moments",
    "number",
    "ridge_solve",
    "usable",
]

BLOCK_ROWS = 1 << 15
"""Rows per block of the blocked passes: a block's scratch arrays stay in the CPU cache."""


class ModelError(ValueError):
    """A family received unusable data or parameters, or a saved model dict is malformed."""


@runtime_checkable
class AxisModel(Protocol):
    """The contract of a model family (see the module docstring).

    ``__init__`` takes only hyperparameters (all with defaults) and stores them; ``fit`` learns
    state in attributes ending in ``_`` and returns ``self``; ``predict`` before ``fit`` raises
    :class:`sklearn.exceptions.NotFittedError`.
    """

    family: ClassVar[str]

    def fit(self, frame: pd.DataFrame, axis: str, where: np.ndarray | None = None) -> AxisModel:
        """Learn ``axis`` from ``frame`` (rows where ``where`` is True, default all); ``self``."""
        ...

    def predict(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        """Expected value of ``axis`` for every row of ``frame`` (float64)."""
        ...

    @property
    def inputs_(self) -> tuple[str, ...]:
        """Columns read besides the axis itself (``time_s`` or other axes)."""
        ...

    @property
    def lookback_(self) -> int:
        """Earlier rows a prediction needs (0 for a function of the row alone)."""
        ...

    def shift_gain(self) -> float:
        """How much of a sustained offset of the axis shows in the residual (1 = all of it)."""
        ...

    def params(self) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as plain JSON data, including ``"family"`` and the parameters."""
        ...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AxisModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        ...


class FamilyBase:
    """Defaults of the :class:`AxisModel` declarations: a function of the row alone (no
    look-back), reading nothing besides the axis, with a sustained offset showing in full and
    no hyperparameters. Families override what differs."""

    family: ClassVar[str]

    def params(self) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__`` (none)."""
        return {}

    @property
    def inputs_(self) -> tuple[str, ...]:
        """Columns read besides the axis itself (none)."""
        return ()

    @property
    def lookback_(self) -> int:
        """Earlier rows a prediction needs (none)."""
        return 0

    def shift_gain(self) -> float:
        """Share of a sustained offset of the axis that stays in its residual (all of it)."""
        return 1.0


def check_family(data: Any, family: str) -> None:
    """Raise :class:`ModelError` unless ``data`` is a model dict of ``family``."""
    if not isinstance(data, Mapping):
        raise ModelError(f"a {family} model must be a mapping, got {type(data).__name__}")
    if data.get("family") != family:
        raise ModelError(
            f"expected family {family!r} in the model dict, got {data.get('family')!r}"
        )


def check_fitted(model: object, attribute: str) -> None:
    """Raise scikit-learn's NotFittedError when ``model`` lacks the learned ``attribute``."""
    if not hasattr(model, attribute):
        # Imported here: scikit-learn costs ~1 s at start-up and is only needed to raise.
        from sklearn.exceptions import NotFittedError

        name = type(model).__name__
        raise NotFittedError(
            f"this {name} is not fitted yet; call fit(frame, axis) or {name}.from_dict(...) "
            "before predict or to_dict"
        )


def as_float_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``frame[column]`` as float64 (a view when it already is), or :class:`ModelError`."""
    if not isinstance(frame, pd.DataFrame):
        raise ModelError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if column not in frame.columns:
        available = ", ".join(repr(str(c)) for c in frame.columns) or "(none)"
        raise ModelError(f"column {column!r} is missing from the frame; available: {available}")
    try:
        return float_column(frame, column)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"column {column!r} must be numeric: {exc}") from exc


def usable(values: np.ndarray) -> np.ndarray:
    """True where a reading is finite and not the idle value 0."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values != 0.0)


def number(data: Mapping[str, Any], key: str, family: str) -> float:
    """A finite number from a saved model dict, or :class:`ModelError` naming the key."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(
            f"{family} model key {key!r} must be a finite number, got {value!r}; "
            "re-train to regenerate models.json"
        )
    return float(value)


class Moments:
    """Count, means and centred co-moment matrix of the rows of ``[features | target]``."""

    def __init__(self, width: int) -> None:
        self.n = 0
        self.mean = np.zeros(width)
        self.comoment = np.zeros((width, width))

    def add(self, block: np.ndarray) -> None:
        """Merge the rows of ``block`` (all finite), Chan's pairwise update."""
        k = block.shape[0]
        if k == 0:
            return
        block_mean = block.mean(axis=0)
        centred = block - block_mean
        self._merge(k, block_mean, centred.T @ centred)

    def merge(self, other: Moments) -> None:
        """Merge the moments of other rows (as if their rows had been added here)."""
        if other.n:
            self._merge(other.n, other.mean, other.comoment)

    def _merge(self, k: int, block_mean: np.ndarray, block_comoment: np.ndarray) -> None:
        total = self.n + k
        delta = block_mean - self.mean
        self.comoment += block_comoment + np.outer(delta, delta) * (self.n * k / total)
        self.mean += delta * (k / total)
        self.n = total


def blocked_moments(
    features: Callable[[int, int], np.ndarray],
    rows: np.ndarray,
    width: int,
    first: int = 0,
    end: int | None = None,
    *,
    finite: bool = False,
) -> Moments:
    """Moments of ``features(start, stop)`` over the rows where ``rows`` and every column is finite.

    ``features(start, stop)`` returns a ``(stop - start, width)`` float64 block (NaN marks an
    unusable entry); the last column is the target. Only rows ``first`` to ``end`` (default
    all) are read. ``finite``: ``rows`` already leaves out every row with a non-finite entry
    (a mask of usable rows does), so the blocks' columns are not checked again.
    """
    moments = Moments(width)
    end = rows.size if end is None else end
    for start in range(first, end, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, end)
        keep = rows[start:stop]
        if not keep.any():
            continue
        block = features(start, stop)
        if not finite:
            # Column by column: NumPy reduces along short rows slowly.
            keep = keep.copy()
            for column in block.T:
                keep &= np.isfinite(column)
        moments.add(block if keep.all() else block[keep])
    return moments


def fold_moments(
    features: Callable[[int, int], np.ndarray],
    rows: np.ndarray,
    width: int,
    edges: Sequence[int],
    *,
    finite: bool = False,
) -> list[Moments]:
    """For each block ``edges[i]:edges[i + 1]``, the :func:`blocked_moments` of the rows outside
    it: one pass gives the moments of each block, and each fold merges the others' (the
    normal equations of every out-of-fold fit for the price of one in-sample fit).
    ``finite`` as for :func:`blocked_moments`.
    """
    blocks = [
        blocked_moments(features, rows, width, lo, hi, finite=finite)
        for lo, hi in itertools.pairwise(edges)
    ]
    folds = []
    for left_out in range(len(blocks)):
        moments = Moments(width)
        for number, block in enumerate(blocks):
            if number != left_out:
                moments.merge(block)
        folds.append(moments)
    return folds


def ridge_solve(moments: Moments, alpha: float) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of target ~ features, ridge-penalised relative to each variance.

    Solves ``(Sxx + alpha * diag(Sxx)) beta = Sxy`` on the centred co-moments: ``alpha`` is
    scale-free (0 = least squares). A feature without variance gets coefficient 0.
    """
    k = moments.comoment.shape[0] - 1
    sxx, sxy = moments.comoment[:k, :k], moments.comoment[:k, k]
    diagonal = np.diag(sxx).copy()
    live = diagonal > 1e-12 * max(1.0, float(diagonal.max(initial=0.0)))
    beta = np.zeros(k)
    if live.any():
        sub = sxx[np.ix_(live, live)] + np.diag(alpha * diagonal[live])
        beta[live] = np.linalg.lstsq(sub, sxy[live], rcond=None)[0]
    intercept = float(moments.mean[k] - moments.mean[:k] @ beta)
    return beta, intercept


class SharedMoments:
    """The joint moments of all axes, computed once and shared by the families that need them.

    ``cross`` and ``pca`` fit every axis on the same rows (where every axis is usable, within
    ``where``), so one pass over the window gives every axis's normal equations: a 10 M-row
    set of 8 cross models costs one pass, not eight. Families declare ``joint = True`` to
    receive it as ``fit(..., shared=...)``.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        axes: Sequence[str],
        where: np.ndarray | None = None,
        *,
        source: Callable[[], Moments] | None = None,
    ) -> None:
        self.frame = frame
        self.axes = tuple(axes)
        self.where = where
        self._source = source
        self._joint: Moments | None = None
        # Axes are fitted on threads: the first family to ask computes, the others wait for it.
        self._lock = threading.Lock()

    @classmethod
    def for_folds(
        cls,
        frame: pd.DataFrame,
        axes: Sequence[str],
        where: np.ndarray | None,
        edges: Sequence[int],
    ) -> list[SharedMoments]:
        """One instance per block ``edges[i]:edges[i + 1]``, of the rows of ``where`` outside
        it (see :func:`fold_moments`); the blocks' moments are computed once, when a family
        first asks for them."""
        computed: list[list[Moments]] = []
        lock = threading.Lock()

        def folds() -> list[Moments]:
            with lock:
                if not computed:
                    arrays, rows = cls._columns(frame, axes, where)
                    computed.append(
                        fold_moments(stacker(arrays), rows, len(arrays), edges, finite=True)
                    )
            return computed[0]

        return [
            cls(frame, axes, where, source=lambda fold=fold: folds()[fold])
            for fold in range(len(edges) - 1)
        ]

    def covers(self, columns: Sequence[str]) -> bool:
        """Whether every column is one of the shared axes."""
        return all(column in self.axes for column in columns)

    def moments(self, columns: Sequence[str]) -> Moments:
        """The moments of ``columns`` (shared axes, in this order) over the shared rows."""
        with self._lock:
            if self._joint is None:
                self._joint = self._compute()
        index = [self.axes.index(column) for column in columns]
        sub = Moments(len(index))
        sub.n = self._joint.n
        sub.mean = self._joint.mean[index].copy()
        sub.comoment = self._joint.comoment[np.ix_(index, index)].copy()
        return sub

    def _compute(self) -> Moments:
        if self._source is not None:
            return self._source()
        arrays, rows = self._columns(self.frame, self.axes, self.where)
        return blocked_moments(stacker(arrays), rows, len(arrays), finite=True)

    @staticmethod
    def _columns(
        frame: pd.DataFrame, axes: Sequence[str], where: np.ndarray | None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The axes' values and the shared rows: within ``where``, every axis usable (so
        finite)."""
        arrays = [as_float_column(frame, axis) for axis in axes]
        rows = np.ones(arrays[0].size, dtype=bool)
        if where is not None:
            rows &= np.asarray(where, dtype=bool)
        for array in arrays:
            rows &= usable(array)
        return arrays, rows


def stacker(arrays: Sequence[np.ndarray]) -> Callable[[int, int], np.ndarray]:
    """The block function of :func:`blocked_moments` giving ``arrays`` side by side."""

    def block(start: int, stop: int) -> np.ndarray:
        return np.column_stack([array[start:stop] for array in arrays])

    return block
