"""Per-axis model families and the protocol every family follows.

A *family* is a class that models one axis signal ``y`` as a function of time ``t``
(seconds since ``t0``). It must satisfy :class:`AxisModel`:

- ``family`` — class attribute, the name used in ``model.type`` and in ``models.json``;
- ``__init__()`` takes no required arguments and only stores parameters;
- ``fit(t, y, where=None)`` learns from two equal-length 1-D float arrays and returns
  ``self``; ``where`` (a boolean mask of the same length, or None for every row) selects
  the rows to learn from, as ``fit(t[where], y[where])`` would (up to rounding), so a
  family can skip the copies; learned state lives in attributes ending in ``_``;
- ``predict(t)`` returns a float64 array shaped like ``t`` and raises
  :class:`sklearn.exceptions.NotFittedError` before ``fit``;
- ``to_dict()`` returns plain JSON-serialisable data that includes ``"family"``;
  ``from_dict(d)`` (classmethod) rebuilds an equivalent fitted model from it.

To add a family, write such a class here (or in its own module) and add one entry to
``MODEL_FAMILIES`` in :mod:`ModelSelection.selector`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AxisModel", "LinearTrend", "ModelError"]

logger = logging.getLogger(__name__)


class ModelError(ValueError):
    """A family model received unusable data, or a saved model dict is malformed."""


@runtime_checkable
class AxisModel(Protocol):
    """What the trainer needs from a per-axis model family (see the module docstring)."""

    family: ClassVar[str]

    def fit(self, t: ArrayLike, y: ArrayLike, where: ArrayLike | None = None) -> AxisModel:
        """Learn from times ``t`` and values ``y`` (the rows where ``where``); return ``self``."""
        ...

    def predict(self, t: ArrayLike) -> np.ndarray:
        """Return the modelled value at each time in ``t``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted state as plain JSON-serialisable data."""
        ...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AxisModel:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        ...


def _as_1d_float(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array, or raise :class:`ModelError`."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name} must be numeric; could not convert it to float: {exc}") from exc
    if array.ndim != 1:
        raise ModelError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


_BLOCK_ROWS = 1 << 15
"""Rows per block of the fit. A block's scratch arrays stay in the CPU cache; full-length
temporaries (the selected rows, the centred times and values) would each be allocated and
first touched, which cost four times the arithmetic (10M rows: ~40 ms blocked, ~160 ms)."""


def _selection(where: ArrayLike | None, size: int) -> np.ndarray | None:
    """``where`` as a 1-D boolean mask of ``size`` rows, or None for every row."""
    if where is None:
        return None
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise ModelError(f"where must be a boolean mask, got dtype {mask.dtype}")
    if mask.shape != (size,):
        raise ModelError(f"where must have one flag per sample ({size}), got shape {mask.shape}")
    return mask


def _not_finite(name: str, values: np.ndarray, mask: np.ndarray | None) -> ModelError:
    """The error for NaN/inf among the selected ``values``, counting all of them."""
    bad = ~np.isfinite(values)
    if mask is not None:
        bad &= mask
    count = int(np.count_nonzero(bad))
    return ModelError(f"{name} contains {count} NaN or infinite value(s); drop or fill them first")


class LinearTrend:
    """Straight-line trend ``y = coef_ * t + intercept_`` fitted by ordinary least squares.

    The fit is closed form on centred sums in float64, which matches
    :class:`sklearn.linear_model.LinearRegression` to rounding error while avoiding its
    overhead for a single feature. The sums are taken block by block and merged (Chan,
    Golub and LeVeque's pairwise update of means and co-moments), as accurate as centring
    the whole series first and without its full-length temporaries. When all ``t`` are
    equal the slope is undetermined; like scikit-learn, the model then uses slope 0 and the
    mean of ``y``.

    Attributes
    ----------
    coef_ : float
        Slope, in signal units per second.
    intercept_ : float
        Value at ``t = 0`` (the first training sample).
    """

    family: ClassVar[str] = "linear"

    def fit(self, t: ArrayLike, y: ArrayLike, where: ArrayLike | None = None) -> LinearTrend:
        """Fit the line to ``(t, y)``, or to the rows where ``where`` is True.

        Parameters
        ----------
        t, y:
            Equal-length 1-D arrays of numbers; the selected rows must be finite and at
            least two.
        where:
            Optional boolean mask of the same length: the rows to fit (default: all). Rows
            left out may hold anything, NaN included.

        Returns
        -------
        LinearTrend
            ``self``, fitted.

        Raises
        ------
        ModelError
            If the arrays are not numeric, not 1-D, differ in length, ``where`` is not a
            matching boolean mask, fewer than two rows are selected, or a selected row
            holds NaN/inf.
        """
        times = _as_1d_float(t, "t")
        values = _as_1d_float(y, "y")
        if times.shape != values.shape:
            raise ModelError(
                f"t and y must have the same length, got {times.size} and {values.size}"
            )
        mask = _selection(where, times.size)
        selected = times.size if mask is None else int(np.count_nonzero(mask))
        if selected < 2:
            raise ModelError(f"a linear trend needs at least 2 samples, got {selected}")
        # Sums are taken around the first selected sample: a constant t then gives exact
        # zeros (a flat line, however the blocks round), and epoch-sized times lose nothing.
        first = 0 if mask is None else int(np.argmax(mask))
        t_ref, y_ref = float(times[first]), float(values[first])
        n, t_mean, y_mean, s_tt, s_ty = 0, 0.0, 0.0, 0.0, 0.0
        # NaN/inf are reported as ModelError below, not as NumPy warnings on the way.
        with np.errstate(invalid="ignore", over="ignore"):
            for start in range(0, times.size, _BLOCK_ROWS):
                rows = slice(start, start + _BLOCK_ROWS)
                t_block, y_block = times[rows], values[rows]
                if mask is not None:
                    keep = mask[rows]
                    k = int(np.count_nonzero(keep))
                    if k == 0:
                        continue
                    if k < keep.size:
                        t_block, y_block = t_block[keep], y_block[keep]
                k = t_block.size
                t_shifted, y_shifted = t_block - t_ref, y_block - y_ref
                t_sum, y_sum = float(np.add.reduce(t_shifted)), float(np.add.reduce(y_shifted))
                # A sum is finite unless a summand is NaN/inf (or the sum overflows: then
                # the check finds nothing and the fit goes on, as a whole-series sum would).
                for name, total, block, full in (
                    ("t", t_sum, t_block, times),
                    ("y", y_sum, y_block, values),
                ):
                    if not math.isfinite(total) and not np.isfinite(block).all():
                        raise _not_finite(name, full, mask)
                block_t_mean, block_y_mean = t_sum / k, y_sum / k
                t_shifted -= block_t_mean  # now centred on the block's mean
                y_shifted -= block_y_mean
                # Not np.dot: BLAS would wake its thread pool for every block.
                block_tt = float(np.add.reduce(t_shifted * t_shifted))
                block_ty = float(np.add.reduce(t_shifted * y_shifted))
                total_n = n + k
                delta_t, delta_y = block_t_mean - t_mean, block_y_mean - y_mean
                weight = n * k / total_n
                s_tt += block_tt + delta_t * delta_t * weight
                s_ty += block_ty + delta_t * delta_y * weight
                t_mean += delta_t * k / total_n
                y_mean += delta_y * k / total_n
                n = total_n
        t_mean, y_mean = t_ref + t_mean, y_ref + y_mean
        if s_tt > 0.0:
            coef = s_ty / s_tt
        else:
            logger.warning("all %d samples share one time; fitting a flat line", n)
            coef = 0.0
        self.coef_ = coef
        self.intercept_ = y_mean - coef * t_mean
        return self

    def predict(self, t: ArrayLike) -> np.ndarray:
        """Return ``coef_ * t + intercept_`` as float64 (NaN where ``t`` is NaN).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit` or :meth:`from_dict`.
        ModelError
            If ``t`` is not numeric.
        """
        self._check_fitted()
        try:
            times = np.asarray(t, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"t must be numeric; could not convert it to float: {exc}") from exc
        return self.coef_ * times + self.intercept_

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"family": "linear", "coef": a, "intercept": b}`` with plain floats."""
        self._check_fitted()
        return {
            "family": self.family,
            "coef": float(self.coef_),
            "intercept": float(self.intercept_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearTrend:
        """Rebuild a fitted :class:`LinearTrend` from :meth:`to_dict` output.

        Raises
        ------
        ModelError
            If ``family`` is not ``"linear"`` or ``coef``/``intercept`` are missing or not
            finite numbers.
        """
        if not isinstance(data, Mapping):
            raise ModelError(f"a linear model must be a mapping, got {type(data).__name__}")
        if data.get("family") != cls.family:
            raise ModelError(
                f"expected family {cls.family!r} in the model dict, got {data.get('family')!r}"
            )
        model = cls()
        for key in ("coef", "intercept"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelError(
                    f"linear model key {key!r} must be a number, got {value!r}; "
                    "re-train to regenerate models.json"
                )
            if not math.isfinite(value):
                raise ModelError(f"linear model key {key!r} must be finite, got {value!r}")
        model.coef_ = float(data["coef"])
        model.intercept_ = float(data["intercept"])
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            # Imported here: scikit-learn costs ~1 s at start-up and is only needed to raise.
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "this LinearTrend is not fitted yet; call fit(t, y) or LinearTrend.from_dict(...) "
                "before predict or to_dict"
            )

    def __repr__(self) -> str:
        if hasattr(self, "coef_"):
            return f"LinearTrend(coef_={self.coef_!r}, intercept_={self.intercept_!r})"
        return "LinearTrend()"
