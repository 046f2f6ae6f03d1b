"""Per-axis model families and the protocol every family follows.

A *family* is a class that models one axis signal ``y`` as a function of time ``t``
(seconds since ``t0``). It must satisfy :class:`AxisModel`:

- ``family`` — class attribute, the name used in ``model.type`` and in ``models.json``;
- ``__init__()`` takes no required arguments and only stores parameters;
- ``fit(t, y)`` learns from two equal-length 1-D float arrays and returns ``self``;
  learned state lives in attributes ending in ``_``;
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

    def fit(self, t: ArrayLike, y: ArrayLike) -> AxisModel:
        """Learn from times ``t`` and values ``y``; return ``self``."""
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


class LinearTrend:
    """Straight-line trend ``y = coef_ * t + intercept_`` fitted by ordinary least squares.

    The fit is closed form on centred sums in float64, which matches
    :class:`sklearn.linear_model.LinearRegression` to rounding error while avoiding its
    overhead for a single feature. When all ``t`` are equal the slope is undetermined;
    like scikit-learn, the model then uses slope 0 and the mean of ``y``.

    Attributes
    ----------
    coef_ : float
        Slope, in signal units per second.
    intercept_ : float
        Value at ``t = 0`` (the first training sample).
    """

    family: ClassVar[str] = "linear"

    def fit(self, t: ArrayLike, y: ArrayLike) -> LinearTrend:
        """Fit the line to ``(t, y)``.

        Parameters
        ----------
        t, y:
            Equal-length 1-D arrays of finite numbers, at least two samples.

        Returns
        -------
        LinearTrend
            ``self``, fitted.

        Raises
        ------
        ModelError
            If the arrays are not numeric, not 1-D, differ in length, hold fewer than two
            samples, or contain NaN/inf.
        """
        times = _as_1d_float(t, "t")
        values = _as_1d_float(y, "y")
        if times.shape != values.shape:
            raise ModelError(
                f"t and y must have the same length, got {times.size} and {values.size}"
            )
        if times.size < 2:
            raise ModelError(f"a linear trend needs at least 2 samples, got {times.size}")
        for name, array in (("t", times), ("y", values)):
            bad = int(np.count_nonzero(~np.isfinite(array)))
            if bad:
                raise ModelError(
                    f"{name} contains {bad} NaN or infinite value(s); drop or fill them first"
                )
        t_mean = float(times.mean())
        y_mean = float(values.mean())
        t_centred = times - t_mean
        denominator = float(np.dot(t_centred, t_centred))
        if denominator > 0.0:
            coef = float(np.dot(t_centred, values - y_mean)) / denominator
        else:
            logger.warning("all %d samples share one time; fitting a flat line", times.size)
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
