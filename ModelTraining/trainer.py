"""One model per axis: fit on usable rows, predict ``{axis}_pred`` and ``{axis}_res``.

Usable rows
    A row is usable for an axis when its value is neither NaN (missing) nor exactly 0.0
    (the machine is idle). Idle and missing rows are excluded from fitting, and their
    residual is NaN, so a run of high residuals always breaks at an idle sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd

from frames import float_column
from ModelSelection import (
    AxisModel,
    ModelConfig,
    ModelError,
    SharedMoments,
    UnknownModelError,
    build_model,
    fit_family,
    machine_model,
    select_model,
)

__all__ = ["AxisModelSet", "TrainingError"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "ml-box/axis-model-set"
FORMAT_VERSION = 2
TIME_COLUMN = "time_s"
SHORT_AXIS_POLICIES = ("error", "skip")


class TrainingError(ValueError):
    """Training or prediction input is unusable (missing column, too few rows, bad dict)."""


def _missing_columns_error(frame: pd.DataFrame, missing: Sequence[str], purpose: str) -> str:
    available = ", ".join(repr(str(c)) for c in frame.columns) or "(none)"
    wanted = ", ".join(repr(c) for c in missing)
    return (
        f"{purpose} needs column(s) {wanted}, missing from the frame; "
        f"available columns: {available}. Check the axis names in the config "
        "and that preparation added 'time_s'"
    )


def _columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame[columns]`` (the same frame: columns, index, shared values), taken by position:
    a list lookup in a string column index costs ~0.1 ms more than the positions' lookups."""
    at = [frame.columns.get_loc(column) for column in columns]
    if not all(isinstance(position, int) for position in at):  # a duplicated name
        return frame[columns]
    return frame.iloc[:, at]


def model_view(frame: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """What the models see of ``frame``: ``time_s`` and ``axes``, whatever else it holds.

    The families read their columns by name and take every float column but ``time_s`` and
    their own as the other axes (``cross``, ``ar`` with exog, ``pca``), in the frame's order.
    So where the frame's float columns are ``time_s`` and exactly ``axes`` in that order, and
    any other column is not a float (a prepared window's datetime ``ts``), the frame itself
    gives the same models: no sub-frame is built (taking ten columns costs pandas ~0.35 ms).
    Otherwise the sub-frame of ``[time_s, *axes]``.
    """
    wanted = [TIME_COLUMN, *axes]
    names = frame.columns.tolist()
    if len(set(names)) == len(names) and set(wanted) <= set(names):
        kinds = dict(zip(names, (dtype.kind for dtype in frame.dtypes.tolist()), strict=True))
        floats = [name for name in names if kinds[name] == "f" and name != TIME_COLUMN]
        if floats == list(axes) and kinds[TIME_COLUMN] == "f":
            return frame
    return _columns(frame, wanted)


def _column_as_float(frame: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return float_column(frame, column)
    except (TypeError, ValueError) as exc:
        raise TrainingError(
            f"column {column!r} must be numeric (float64); could not convert it: {exc}"
        ) from exc


def _residual(values: np.ndarray, predicted: np.ndarray, *, out: bool = False) -> np.ndarray:
    """``values − predicted``, NaN where the value is NaN or 0 (idle).

    With ``out`` the result is written over ``predicted`` (which must be our own array).
    """
    if values.ndim != 1 or values.shape != predicted.shape:
        residual = np.subtract(values, predicted, out=predicted if out else None)
        np.copyto(residual, np.nan, where=values == 0.0)
        return residual
    residual = predicted if out else np.empty(values.size, np.result_type(values, predicted))
    # Block by block: each block of values is still in the CPU cache when it is compared with 0,
    # and the idle mask is a block, not a full-length array.
    for lo in range(0, values.size, _RESIDUAL_BLOCK):
        part = slice(lo, lo + _RESIDUAL_BLOCK)
        block = values[part]
        done = np.subtract(block, predicted[part], out=residual[part])
        np.copyto(done, np.nan, where=block == 0.0)
    return residual


_RESIDUAL_BLOCK = 1 << 15
"""Rows per block of :func:`_residual`."""


FamilySpec = tuple[str, Mapping[str, Any]]
"""A family name and its hyperparameters, e.g. ``("ar", {"lags": 4})``."""


def _specs(
    families: type[AxisModel] | str | Mapping[str, FamilySpec], axes: Sequence[str]
) -> dict[str, FamilySpec]:
    """Axis → (family, params) from a family class or name (every axis) or a mapping."""
    if isinstance(families, Mapping):
        return {str(axis): (str(spec[0]), dict(spec[1])) for axis, spec in families.items()}
    name = families if isinstance(families, str) else getattr(families, "family", None)
    if not isinstance(name, str):
        raise TrainingError(
            f"families must be a model family class, a family name or a mapping of axis to "
            f"(family, params), got {families!r}"
        )
    return {str(axis): (name, {}) for axis in axes}


class AxisModelSet:
    """A fitted model per axis (each its own family) and, optionally, a machine-level model.

    Parameters
    ----------
    families:
        A family class or name for every axis (e.g. ``LinearTrend`` or ``"linear"``), or a
        mapping axis → ``(family name, params)`` as chosen by
        :func:`ModelSelection.select_families`. Classes must be module-level so the set pickles.
    axes:
        Axis column names, in output order.
    on_short_axis:
        ``"error"`` (default) raises :class:`TrainingError` for an axis with fewer than
        ``min_rows`` usable rows; ``"skip"`` logs a warning and leaves it out of ``models_``.
    min_rows:
        Minimum usable rows per axis (default 2, at least 2).
    n_jobs:
        Axes fitted at the same time, in threads (NumPy releases the GIL for the heavy
        parts); ``None`` (default) or 1 fits one axis after the other. Every axis's model is
        the same either way. Not saved by :meth:`to_dict`.
    machine:
        The machine channel (``"none"``, ``"ssr"``, ``"pca"`` or ``"iforest"``; see
        :mod:`ModelSelection.machine`); ``pca`` and ``iforest`` fit a model here.

    Attributes
    ----------
    models_ : dict[str, AxisModel]
        Fitted model per fitted axis, in ``axes`` order.
    machine_model_ : object or None
        The fitted machine-level model (``pca``/``iforest``), else None.
    fit_report_ : dict[str, dict[str, int]]
        Per axis ``rows_fitted``, ``rows_excluded_zero``, ``rows_excluded_nan``; skipped axes
        are included with ``rows_fitted`` 0.
    skipped_axes_ : list[str]
        Axes left out because they had too few usable rows.
    """

    def __init__(
        self,
        families: type[AxisModel] | str | Mapping[str, FamilySpec],
        axes: Sequence[str],
        *,
        on_short_axis: Literal["error", "skip"] = "error",
        min_rows: int = 2,
        n_jobs: int | None = None,
        machine: str = "none",
    ) -> None:
        self.families = families
        self.axes = axes
        self.on_short_axis = on_short_axis
        self.min_rows = min_rows
        self.n_jobs = n_jobs
        self.machine = machine

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        axes: Sequence[str],
        families: Mapping[str, FamilySpec] | None = None,
    ) -> AxisModelSet:
        """Build an unfitted set from the ``model:`` config section.

        ``families`` (the selection's choice) is required when ``model.type`` is ``auto``.
        """
        if families is None:
            if config.type == "auto":
                raise TrainingError("model.type auto needs the selected families; run selection")
            families = {
                axis: (config.type, dict(config.params.get(config.type, {}))) for axis in axes
            }
        return cls(
            families,
            axes,
            on_short_axis=config.on_short_axis,
            min_rows=config.min_rows,
            machine=config.machine,
        )

    def _validated_axes(self) -> list[str]:
        if isinstance(self.axes, str) or not isinstance(self.axes, Sequence):
            raise TrainingError(
                f"axes must be a list of column names, got {type(self.axes).__name__}"
            )
        axes = list(self.axes)
        if not axes:
            raise TrainingError("axes is empty; list at least one axis column to model")
        duplicates = sorted({a for a in axes if axes.count(a) > 1})
        if duplicates:
            raise TrainingError(f"axes lists {duplicates} more than once; list each axis once")
        if TIME_COLUMN in axes:
            raise TrainingError(f"{TIME_COLUMN!r} is the time column and cannot be an axis")
        return axes

    def _validate_options(self) -> None:
        if self.on_short_axis not in SHORT_AXIS_POLICIES:
            raise TrainingError(
                f"on_short_axis must be one of {list(SHORT_AXIS_POLICIES)}, "
                f"got {self.on_short_axis!r}"
            )
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int):
            raise TrainingError(f"min_rows must be an integer, got {self.min_rows!r}")
        if self.min_rows < 2:
            raise TrainingError(f"min_rows must be at least 2, got {self.min_rows}")
        n_jobs = self.n_jobs
        if n_jobs is not None and (
            isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1
        ):
            raise TrainingError(f"n_jobs must be None or an integer >= 1, got {n_jobs!r}")
        try:
            machine_model(self.machine)
        except ModelError as exc:
            raise TrainingError(str(exc)) from exc

    def _resolved_specs(self) -> dict[str, FamilySpec]:
        """Axis → (family, params), every axis covered and every model buildable."""
        specs = _specs(self.families, self._validated_axes())
        missing = [axis for axis in self._validated_axes() if axis not in specs]
        if missing:
            raise TrainingError(f"no family given for axes {missing}")
        for axis, (family, params) in specs.items():
            try:
                build_model(family, params)
            except (ModelError, UnknownModelError) as exc:
                raise TrainingError(f"axis {axis!r}: {exc}") from exc
        return specs

    def fit(self, frame: pd.DataFrame, where: np.ndarray | None = None) -> AxisModelSet:
        """Fit one model per axis on that axis's usable rows (and the machine model).

        Parameters
        ----------
        frame:
            Time-ordered frame with ``time_s`` and every axis column. Not modified.
        where:
            Optional boolean mask: rows allowed in the fits (default all), e.g. without
            labelled incidents.

        Returns
        -------
        AxisModelSet
            ``self``, fitted.

        Raises
        ------
        TrainingError
            If a column is missing or non-numeric, ``time_s`` has NaN/inf, an axis has fewer
            than ``min_rows`` usable rows and ``on_short_axis`` is ``"error"``, every axis
            was skipped, or the family rejects an axis's data.
        """
        self._validate_options()
        specs = self._resolved_specs()
        axes = self._validated_axes()
        if not isinstance(frame, pd.DataFrame):
            raise TrainingError(f"fit expects a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in (TIME_COLUMN, *axes) if c not in frame.columns]
        if missing:
            raise TrainingError(_missing_columns_error(frame, missing, "training"))
        times = _column_as_float(frame, TIME_COLUMN)
        bad_times = int(np.count_nonzero(~np.isfinite(times)))
        if bad_times:
            raise TrainingError(
                f"column {TIME_COLUMN!r} has {bad_times} NaN or infinite value(s); "
                "every row needs a time, check the 'ts' column and preparation"
            )
        allowed = None if where is None else np.asarray(where, dtype=bool)
        if allowed is not None and allowed.shape != (len(frame),):
            raise TrainingError(
                f"where must have one flag per row ({len(frame)}), got shape {allowed.shape}"
            )
        # The models see the time and the configured axes only, whatever else the frame holds.
        view = model_view(frame, axes)
        shared = SharedMoments(view, axes, allowed)

        def fit_axis(axis: str) -> tuple[AxisModel | None, dict[str, int]]:
            values = _column_as_float(frame, axis)
            infinite = int(np.count_nonzero(np.isinf(values)))
            if infinite:
                raise TrainingError(
                    f"axis {axis!r} has {infinite} infinite value(s); remove or fix those "
                    "readings (preparation refuses them in a training run)"
                )
            is_nan = np.isnan(values)
            is_zero = values == 0.0
            nan, zero = int(np.count_nonzero(is_nan)), int(np.count_nonzero(is_zero))
            if allowed is None:  # NaN and 0 never coincide: the rest are usable
                fitted = values.size - nan - zero
            else:
                fitted = int(np.count_nonzero(allowed & ~(is_nan | is_zero)))
            counts = {
                "rows_fitted": fitted,
                "rows_excluded_zero": zero,
                "rows_excluded_nan": nan,
            }
            if counts["rows_fitted"] < self.min_rows:
                return None, counts
            family, params = specs[axis]
            try:
                model = fit_family(build_model(family, params), view, axis, allowed, shared)
                return model, counts
            except ModelError as exc:
                raise TrainingError(f"cannot fit axis {axis!r} ({family}): {exc}") from exc

        n_jobs = min(self.n_jobs or 1, len(axes))
        if n_jobs > 1:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                fitted = list(pool.map(fit_axis, axes))
        else:
            fitted = [fit_axis(axis) for axis in axes]

        models: dict[str, AxisModel] = {}
        report: dict[str, dict[str, int]] = {}
        skipped: list[str] = []
        for axis, (model, counts) in zip(axes, fitted, strict=True):
            if model is None:
                n_usable = counts["rows_fitted"]
                report[axis] = {**counts, "rows_fitted": 0}
                detail = (
                    f"axis {axis!r} has {n_usable} usable row(s) "
                    f"(of {len(frame)}: {counts['rows_excluded_zero']} idle zeros, "
                    f"{counts['rows_excluded_nan']} NaN), fewer than min_rows={self.min_rows}"
                )
                if self.on_short_axis == "error":
                    raise TrainingError(
                        f"{detail}; widen the training window, remove the axis, "
                        "or set model.on_short_axis: skip"
                    )
                logger.warning("%s; skipping it (model.on_short_axis=skip)", detail)
                skipped.append(axis)
                continue
            models[axis] = model
            report[axis] = counts
            logger.debug("fitted axis %r on %d rows", axis, counts["rows_fitted"])
        if not models:
            raise TrainingError(
                f"every axis was skipped for too few usable rows ({skipped}); "
                "widen the training window or check that the machine was running"
            )
        machine_cls = machine_model(self.machine)
        machine = None
        if machine_cls is not None:
            try:
                machine = machine_cls().fit(view, list(models), where=allowed)
            except ModelError as exc:
                raise TrainingError(
                    f"cannot fit the {self.machine} machine channel: {exc}"
                ) from exc
        self.models_ = models
        self.machine_model_ = machine
        self.fit_report_ = report
        self.skipped_axes_ = skipped
        return self

    @property
    def lookback_(self) -> int:
        """Earlier rows the predictions need: the largest lookback of any axis's model."""
        self._check_fitted()
        return max((model.lookback_ for model in self.models_.values()), default=0)

    def families_(self) -> dict[str, str]:
        """Axis → family name of its fitted model."""
        self._check_fitted()
        return {axis: str(model.family) for axis, model in self.models_.items()}

    def machine_score(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The machine-level model's score of every row, or None without such a model."""
        self._check_fitted()
        if self.machine_model_ is None:
            return None
        return self.machine_model_.score(frame)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            # Imported here: scikit-learn (and SciPy under it) takes ~1 s to import, and the
            # pipeline needs only this exception, only when raising it.
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "this AxisModelSet is not fitted yet; call fit(frame) or "
                "AxisModelSet.from_dict(...) first"
            )

    def predict(self, frame: pd.DataFrame, axes: Sequence[str] | None = None) -> pd.DataFrame:
        """Return a new frame with ``{axis}_pred`` and ``{axis}_res`` for every fitted axis.

        ``{axis}_pred`` is filled for every row; ``{axis}_res`` = value − prediction, NaN
        where the value is 0 (idle) or NaN. Skipped axes get no columns.

        Parameters
        ----------
        frame:
            Frame with ``time_s`` (seconds since the training ``t0``) and every predicted axis.
            Not modified.
        axes:
            Fitted axes to predict, in this order; ``None`` (default) predicts every fitted
            axis. One axis at a time keeps a long window's predictions small in memory.

        Returns
        -------
        pandas.DataFrame
            A copy of ``frame`` plus the new columns (existing ones of the same name are
            replaced).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the set is not fitted.
        TrainingError
            If ``time_s`` or a predicted axis column is missing or non-numeric, or ``axes``
            names an axis that was not fitted.
        """
        self._check_fitted()
        if not isinstance(frame, pd.DataFrame):
            raise TrainingError(f"predict expects a pandas DataFrame, got {type(frame).__name__}")
        wanted = list(self.models_) if axes is None else list(axes)
        unknown = [axis for axis in wanted if axis not in self.models_]
        if unknown:
            raise TrainingError(
                f"cannot predict axes {unknown}: they were not fitted; fitted axes: "
                f"{list(self.models_)}"
            )
        new_columns: dict[str, np.ndarray] = {}
        for axis in wanted:
            predicted = self._expected(frame, axis, "prediction")
            values = _column_as_float(frame, axis)
            new_columns[f"{axis}_pred"] = predicted
            new_columns[f"{axis}_res"] = _residual(values, predicted)
        if any(column in frame.columns for column in new_columns):
            return frame.assign(**new_columns)
        # The new arrays are owned by nobody else: join them without the copy assign makes
        # (with copy-on-write the input frame still cannot change through the result).
        added = pd.DataFrame(new_columns, index=frame.index, copy=False)
        return pd.concat([frame, added], axis=1)

    def residual(self, frame: pd.DataFrame, axis: str) -> np.ndarray:
        """Return ``{axis}_res`` of :meth:`predict` alone: value − prediction, NaN where idle.

        The prediction is not kept, which spares a full-length array per call; the values
        are identical to those of :meth:`predict`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the set is not fitted.
        TrainingError
            If ``axis`` was not fitted, or ``time_s`` or the axis column is missing or
            non-numeric.
        """
        self._check_fitted()
        if axis not in self.models_:
            raise TrainingError(
                f"cannot compute residuals of axis {axis!r}: it was not fitted; fitted axes: "
                f"{list(self.models_)}"
            )
        predicted = self._expected(frame, axis, "residuals")
        values = _column_as_float(frame, axis)
        # A fresh prediction array is overwritten by the residual instead of allocating one.
        scratch = (
            predicted.flags.owndata
            and predicted.flags.writeable
            and not np.may_share_memory(predicted, values)
        )
        return _residual(values, predicted, out=scratch)

    def _expected(self, frame: pd.DataFrame, axis: str, purpose: str) -> np.ndarray:
        """The model's expected values of ``axis`` for every row of ``frame``."""
        model = self.models_[axis]
        needed = [TIME_COLUMN, axis, *model.inputs_]
        missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
        if missing:
            raise TrainingError(_missing_columns_error(frame, missing, purpose))
        for column in needed:
            _column_as_float(frame, column)  # a non-numeric column is a TrainingError
        try:
            return np.asarray(model.predict(frame, axis), dtype=np.float64)
        except ModelError as exc:
            raise TrainingError(f"cannot predict axis {axis!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted set as readable JSON-serialisable data (``models.json``).

        Keys: ``format``, ``format_version``, ``families`` (axis → family name), ``axes``
        (fitted, in order), ``skipped_axes``, ``on_short_axis``, ``min_rows``, ``models``
        (axis → family dict, parameters included), ``machine`` (``kind`` and its model dict or
        None), ``fit_report``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the set is not fitted.
        """
        self._check_fitted()
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "families": self.families_(),
            "axes": list(self.models_),
            "skipped_axes": list(self.skipped_axes_),
            "on_short_axis": self.on_short_axis,
            "min_rows": int(self.min_rows),
            "models": {axis: model.to_dict() for axis, model in self.models_.items()},
            "machine": {
                "kind": self.machine,
                "model": None if self.machine_model_ is None else self.machine_model_.to_dict(),
            },
            "fit_report": {axis: dict(counts) for axis, counts in self.fit_report_.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AxisModelSet:
        """Rebuild a fitted set from :meth:`to_dict` output (e.g. a loaded ``models.json``).

        Also reads version 1 (one family for every axis, no machine channel), written before
        model selection existed.

        Raises
        ------
        TrainingError
            If the dict is not in this format, names an unknown family, or a model entry
            is malformed.
        """
        if not isinstance(data, Mapping):
            raise TrainingError(f"models data must be a mapping, got {type(data).__name__}")
        version = data.get("format_version")
        if data.get("format") != FORMAT_NAME or version not in (1, FORMAT_VERSION):
            raise TrainingError(
                f"models data has format {data.get('format')!r} version "
                f"{version!r}; expected {FORMAT_NAME!r} version 1 or "
                f"{FORMAT_VERSION}. Re-train to write a current models.json"
            )
        try:
            axes = [str(a) for a in data["axes"]]
            entries = data["models"]
            if version == 1:
                families = {axis: str(data["family"]) for axis in axes}
            else:
                families = {axis: str(data["families"][axis]) for axis in axes}
            models = {axis: select_model(families[axis]).from_dict(entries[axis]) for axis in axes}
            machine = data.get("machine") or {"kind": "none", "model": None}
            kind = str(machine.get("kind", "none"))
            machine_cls = machine_model(kind)
            machine_fitted = None
            if machine_cls is not None:
                machine_fitted = machine_cls.from_dict(machine["model"])
            model_set = cls(
                {axis: (families[axis], models[axis].params()) for axis in axes},
                [*axes, *data.get("skipped_axes", [])],
                on_short_axis=data.get("on_short_axis", "error"),
                min_rows=int(data.get("min_rows", 2)),
                machine=kind,
            )
            report = {
                str(axis): {str(k): int(v) for k, v in counts.items()}
                for axis, counts in data.get("fit_report", {}).items()
            }
        except (KeyError, TypeError, AttributeError, ModelError, UnknownModelError) as exc:
            raise TrainingError(
                f"models data is malformed ({type(exc).__name__}: {exc}); "
                "re-train to write a current models.json"
            ) from exc
        model_set._validate_options()
        model_set.models_ = models
        model_set.machine_model_ = machine_fitted
        model_set.fit_report_ = report
        model_set.skipped_axes_ = [str(a) for a in data.get("skipped_axes", [])]
        return model_set

    def __repr__(self) -> str:
        state = ""
        if hasattr(self, "models_"):
            state = f", fitted={self.families_()}"
        return f"AxisModelSet(axes={list(self.axes)!r}, machine={self.machine!r}{state})"
