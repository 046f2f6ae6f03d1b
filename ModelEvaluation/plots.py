"""Fit and residual plots per axis: what each figure shows, and writing them as PNG files.

This module computes each figure's data (:class:`PlotSpec`, subsampled by
:func:`~ModelEvaluation.subsample.subsample_extremes`, the figure then notes "subsampled: N of M
points"); the drawing itself is in :mod:`ModelEvaluation.figures`, the only module that imports
matplotlib, on the first figure drawn. Figures are drawn in the calling process, a series on one
reused figure: at ~60-80 ms each, a helper process would cost more to start than it saves (see
the README, "Performance"). Plot functions return plain :class:`matplotlib.figure.Figure`
objects (no pyplot state).

File names
    See :func:`plot_file_stems`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .evaluator import EvaluationError, require_columns
from .subsample import pick

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "THRESHOLD_KEYS",
    "AxisPlotData",
    "PlotSpec",
    "axis_plot_data",
    "plot_file_stems",
    "plot_fit",
    "plot_residuals",
    "safe_file_stem",
    "save_figure",
    "threshold_label",
    "write_plots",
]

PALETTE: dict[str, str] = {
    "data": "tab:blue",
    "expected": "tab:red",
    "zero": "black",
    "alert": "tab:orange",
    "error": "tab:purple",
    "MinC": "tab:orange",
    "MaxC": "tab:purple",
    "MinC_low": "tab:orange",
    "MaxC_low": "tab:purple",
}
"""One colour per meaning in every figure (training plots, digest, version report): alert
lines and shading orange, error purple, data blue, the model's expected value red."""

THRESHOLD_KEYS: tuple[str, ...] = ("MinC", "MaxC", "MinC_low", "MaxC_low")
"""Threshold keys of ``thresholds.json`` drawn as lines, in legend order."""

_THRESHOLD_LABELS = {
    "MinC": "alert (MinC)",
    "MaxC": "error (MaxC)",
    "MinC_low": "alert low (MinC_low)",
    "MaxC_low": "error low (MaxC_low)",
}

ZERO_COLOUR = PALETTE["zero"]
MINC_COLOUR = PALETTE["MinC"]
MAXC_COLOUR = PALETTE["MaxC"]


def threshold_label(key: str) -> str:
    """What a threshold line is called in every figure: ``alert (MinC)``, ``error (MaxC)``,
    ``alert low (MinC_low)``, ``error low (MaxC_low)``."""
    return _THRESHOLD_LABELS[key]


_ZERO_LEVEL = ((0.0, "zero", ZERO_COLOUR),)
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_STEM_MAX_LENGTH = 80


def safe_file_stem(name: str) -> str:
    """Return a file-name-safe stem for one axis name.

    Every run of characters other than ASCII letters, digits, ``.``, ``_`` and ``-`` becomes
    one ``_``; leading and trailing ``_``/``.``/``-`` are dropped; the result is cut to 80
    characters; an empty result becomes ``axis``. ``"Axis #1"`` → ``"Axis_1"``. Different
    names can share a stem; use :func:`plot_file_stems` for a set of axes.
    """
    stem = _UNSAFE_RUN.sub("_", str(name)).strip("_.-")[:_STEM_MAX_LENGTH]
    return stem or "axis"


def plot_file_stems(axes: Sequence[str]) -> dict[str, str]:
    """Return a collision-free file stem for every axis.

    Each axis gets :func:`safe_file_stem`; when two or more axes of the set would share a
    stem (compared case-insensitively, for case-insensitive file systems), every one of
    them gets ``-`` plus the first 8 hex digits of the SHA-256 of its name appended. The
    result does not depend on the order of ``axes``.
    """
    stems = {axis: safe_file_stem(axis) for axis in axes}
    holders: dict[str, int] = {}
    for stem in stems.values():
        holders[stem.lower()] = holders.get(stem.lower(), 0) + 1
    return {
        axis: (
            f"{stem}-{hashlib.sha256(str(axis).encode()).hexdigest()[:8]}"
            if holders[stem.lower()] > 1
            else stem
        )
        for axis, stem in stems.items()
    }


@dataclass(frozen=True, eq=False)
class PlotSpec:
    """Everything needed to draw one figure: small, picklable, no DataFrame.

    Drawn by :func:`ModelEvaluation.figures.draw`.
    """

    title: str
    x_label: str
    y_label: str
    x_is_time: bool
    points_x: np.ndarray
    points_y: np.ndarray
    points_label: str
    n_total: int
    line_x: np.ndarray | None = None
    line_y: np.ndarray | None = None
    line_label: str = ""
    levels: tuple[tuple[float, str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _TimeAxis:
    """The x values of a frame's plots: computed once, shared by every figure of the frame."""

    values: np.ndarray
    valid: np.ndarray | None  # None: every x is valid
    label: str
    is_time: bool


def _time_axis(frame: pd.DataFrame) -> _TimeAxis:
    """Return the x values (UTC datetimes, else ``time_s``), where they are valid, and a label."""
    if "ts" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["ts"]):
        ts = frame["ts"]
        if getattr(ts.dtype, "tz", None) is not None:
            ts = ts.dt.tz_convert(None)  # UTC wall times, without a copy
        x = ts.to_numpy()  # in the column's own unit: a view, where a unit cast would copy
        invalid = np.isnat(x)
        return _TimeAxis(x, ~invalid if invalid.any() else None, "time (UTC)", True)
    if "time_s" in frame.columns:
        x = _column(frame, "time_s")
        valid = np.isfinite(x)
        return _TimeAxis(x, None if valid.all() else valid, "time since t0 [s]", False)
    raise EvaluationError(
        "plotting needs a datetime 'ts' column or a 'time_s' column; "
        f"available columns: {', '.join(map(repr, map(str, frame.columns)))}"
    )


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _usable(time_axis: _TimeAxis, *conditions: np.ndarray) -> np.ndarray:
    mask = conditions[0] if time_axis.valid is None else time_axis.valid & conditions[0]
    for condition in conditions[1:]:
        mask &= condition
    return mask


def _fit_spec(
    frame: pd.DataFrame,
    axis: str,
    max_points: int,
    time_axis: _TimeAxis | None = None,
    usable: np.ndarray | None = None,
) -> PlotSpec:
    """The fit plot's data: the usable samples, and the model at the same rows.

    The model is ``{axis}_pred``; a frame with only ``{axis}_res`` gives it as value minus
    residual (what the training pipeline passes: no full-length prediction column).
    ``usable`` (residual path only) is :func:`_residual_rows`, when the caller has it.
    """
    predicted_column, residual_column = f"{axis}_pred", f"{axis}_res"
    if residual_column not in frame.columns or predicted_column in frame.columns:
        require_columns(frame, [axis, predicted_column], "the fit plot")
    else:
        require_columns(frame, [axis], "the fit plot")
    time_axis = time_axis or _time_axis(frame)
    values = _column(frame, axis)
    if predicted_column in frame.columns:
        predicted = _column(frame, predicted_column)
        usable = _usable(time_axis, np.isfinite(values), values != 0.0, np.isfinite(predicted))
        points = pick(values, usable, max_points)
        line = predicted[points.rows]
    else:
        residuals = _column(frame, residual_column)
        if usable is None:
            usable = _residual_rows(time_axis, residuals)
        points = pick(values, usable, max_points)
        line = points.values - residuals[points.rows]
    x = time_axis.values[points.rows]
    return PlotSpec(
        title=f"{axis}: data and fitted model",
        x_label=time_axis.label,
        y_label=str(axis),
        x_is_time=time_axis.is_time,
        points_x=x,
        points_y=points.values,
        points_label="data (idle and missing rows hidden)",
        n_total=points.n_total,
        line_x=x,
        line_y=line,
        line_label="fitted model",
    )


def _residual_rows(time_axis: _TimeAxis, residuals: np.ndarray) -> np.ndarray:
    """Rows with a residual: the value is finite, not idle, and modelled, at a valid time."""
    return _usable(time_axis, np.isfinite(residuals))


def _residual_spec(
    frame: pd.DataFrame,
    axis: str,
    max_points: int,
    time_axis: _TimeAxis | None = None,
    usable: np.ndarray | None = None,
) -> PlotSpec:
    """The residual plot's data, with the zero line; MinC/MaxC come with :func:`_levels`."""
    require_columns(frame, [f"{axis}_res"], "the residual plot")
    time_axis = time_axis or _time_axis(frame)
    residuals = _column(frame, f"{axis}_res")
    if usable is None:
        usable = _residual_rows(time_axis, residuals)
    points = pick(residuals, usable, max_points)
    return PlotSpec(
        title=f"{axis}: residuals (value − model)",
        x_label=time_axis.label,
        y_label=f"{axis} residual",
        x_is_time=time_axis.is_time,
        points_x=time_axis.values[points.rows],
        points_y=points.values,
        points_label="residual",
        n_total=points.n_total,
        levels=_ZERO_LEVEL,
    )


def _levels(spec: PlotSpec, thresholds: Mapping[str, float | None]) -> PlotSpec:
    """``spec`` with a dashed line for every threshold of :data:`THRESHOLD_KEYS` that
    ``thresholds`` gives (not None), labelled e.g. ``alert (MinC) = 0.4``."""
    levels = list(spec.levels)
    for key in THRESHOLD_KEYS:
        value = thresholds.get(key)
        if value is not None:
            levels.append((float(value), f"{threshold_label(key)} = {value:.4g}", PALETTE[key]))
    return replace(spec, levels=tuple(levels))


def _with_unit(spec: PlotSpec, unit: str | None) -> PlotSpec:
    """``spec`` with ``[unit]`` after its y label (unchanged without a unit)."""
    return spec if not unit else replace(spec, y_label=f"{spec.y_label} [{unit}]")


@dataclass(frozen=True, eq=False)
class AxisPlotData:
    """The subsampled data of one axis's fit and residual figures.

    Small (at most ``3 * max_points`` points) and picklable: it can be computed where the
    axis's residuals are at hand and drawn later, once the thresholds are known.
    """

    axis: str
    fit: PlotSpec
    residual: PlotSpec


def axis_plot_data(frame: pd.DataFrame, axis: str, *, max_points: int = 20000) -> AxisPlotData:
    """Compute what the two figures of ``axis`` draw, each series subsampled to ``max_points``.

    ``frame`` has a time column (``ts`` datetime, else ``time_s``), ``axis`` and ``{axis}_res``;
    with ``{axis}_pred`` too the fitted line is taken from it, else it is value minus residual
    (no full-length prediction column is needed).

    Raises:
        EvaluationError: a needed column is missing.
    """
    require_columns(frame, [axis, f"{axis}_res"], "the fit and residual plots")
    time_axis = _time_axis(frame)
    usable = None
    if f"{axis}_pred" not in frame.columns:
        usable = _residual_rows(time_axis, _column(frame, f"{axis}_res"))
    return AxisPlotData(
        axis=axis,
        fit=_fit_spec(frame, axis, max_points, time_axis, usable),
        residual=_residual_spec(frame, axis, max_points, time_axis, usable),
    )


def plot_fit(frame: pd.DataFrame, axis: str, *, max_points: int = 20000) -> Figure:
    """Return a figure of the axis signal (points) and the fitted model (line) against time.

    ``frame`` comes from ``AxisModelSet.predict`` (``axis`` and ``{axis}_pred``), or has
    ``{axis}_res`` instead of ``{axis}_pred`` (the model is then value minus residual). The x
    axis is ``ts`` when it is a datetime column (UTC), else ``time_s``. Idle (0) and missing
    (NaN) rows are not drawn; each series is subsampled to at most ``max_points``.

    Raises:
        EvaluationError: a needed column is missing.
    """
    return _draw(_fit_spec(frame, axis, max_points))


def plot_residuals(
    frame: pd.DataFrame,
    axis: str,
    *,
    minc: float | None = None,
    maxc: float | None = None,
    max_points: int = 20000,
) -> Figure:
    """Return a figure of the residuals (points), a zero line and dashed threshold lines
    labelled ``alert (MinC) = ...`` and ``error (MaxC) = ...``.

    ``frame`` has ``{axis}_res`` and a time column (``ts`` datetime or ``time_s``); ``minc``
    and ``maxc`` are drawn as dashed lines unless ``None`` (default); the residuals are
    subsampled to at most ``max_points``.

    Raises:
        EvaluationError: a needed column is missing.
    """
    return _draw(_levels(_residual_spec(frame, axis, max_points), {"MinC": minc, "MaxC": maxc}))


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at 100 dpi, creating parent folders; return the path."""
    from .figures import save_png

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, target)
    return target


def _draw(spec: PlotSpec) -> Figure:
    from .figures import draw

    return draw(spec)


def _render_pngs(specs: Sequence[PlotSpec]) -> list[bytes]:
    """PNG bytes of every spec, drawn one after another on one reused figure (and encoded
    while the next is drawn)."""
    from .figures import Painter

    return Painter().render_pngs(specs)


def write_plots(
    data: Sequence[AxisPlotData],
    thresholds: Mapping[str, Mapping[str, float]] | None,
    out_dir: str | Path,
    units: Mapping[str, str] | None = None,
) -> list[Path]:
    """Draw and write ``{stem}_fit.png`` and ``{stem}_residual.png`` for every axis of ``data``.

    Stems come from :func:`plot_file_stems`. Every figure is drawn (in this process) before
    the first file is written, so a figure that cannot be drawn writes nothing.

    Args:
        data: one :func:`axis_plot_data` per axis, in output order.
        thresholds: axis → record with ``"MinC"`` and ``"MaxC"`` (and ``"MinC_low"``,
            ``"MaxC_low"`` when the lower side is on; as in ``thresholds.json``), drawn as
            "alert (MinC)", "error (MaxC)", ...; axes without a record, or ``None``, get
            residual plots without threshold lines.
        out_dir: folder to write into (created if needed).
        units: axis → unit (``data.units``), added to the y labels as ``[unit]``.

    Returns:
        The written files, per axis in ``data`` order: fit, then residual.

    Raises:
        Exception: whatever drawing a figure raised, unchanged (nothing is written then).
    """
    folder = Path(out_dir)
    stems = plot_file_stems([item.axis for item in data])
    specs: list[PlotSpec] = []
    paths: list[Path] = []
    for item in data:
        record = (thresholds or {}).get(item.axis, {})
        unit = (units or {}).get(item.axis)
        specs += [_with_unit(item.fit, unit), _with_unit(_levels(item.residual, record), unit)]
        stem = stems[item.axis]
        paths += [folder / f"{stem}_fit.png", folder / f"{stem}_residual.png"]
    images = _render_pngs(specs)
    for path, image in zip(paths, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)
    return paths
