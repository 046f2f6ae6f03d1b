"""Fit and residual plots per axis, drawn on plain :class:`matplotlib.figure.Figure` objects.

No pyplot state is used, so drawing is backend-independent and safe in threads and
worker processes. Plot functions return figures; :func:`save_figure` writes them.

Subsampling
    A series longer than ``max_points`` is cut, in time order, into ``max_points // 4``
    buckets of equal size (the last may be shorter); each bucket keeps its minimum, its
    maximum, its first and its middle sample. Peaks, the global minimum and the global
    maximum therefore always survive, the body of the distribution stays visible, and the
    same input always gives the same points. The figure then notes "subsampled: N of M
    points".

File names
    See :func:`plot_file_stems`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from .evaluator import EvaluationError, require_columns

__all__ = [
    "plot_file_stems",
    "plot_fit",
    "plot_residuals",
    "render_plots",
    "safe_file_stem",
    "save_figure",
    "subsample_extremes",
]

logger = logging.getLogger(__name__)

DPI = 100
FIGSIZE = (10.0, 4.5)
DATA_COLOUR = "tab:blue"
FIT_COLOUR = "tab:red"
ZERO_COLOUR = "black"
MINC_COLOUR = "tab:orange"
MAXC_COLOUR = "tab:purple"
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_STEM_MAX_LENGTH = 80


def subsample_extremes(values: np.ndarray, max_points: int) -> np.ndarray:
    """Return sorted indices of at most ``max_points`` samples that keep every bucket's extremes.

    ``values`` (finite, in time order) is cut into ``max_points // 4`` buckets of
    ``ceil(len / buckets)`` consecutive samples (the last may be shorter). Each bucket keeps
    its first minimum, its first maximum, its first sample and its middle sample: the
    extremes keep peaks (and the global minimum and maximum), the two evenly spaced samples
    keep the body of the distribution visible, so noise does not look like two bands.
    With ``len(values) <= max_points`` every index is returned.

    Parameters
    ----------
    values:
        1-D array of finite values.
    max_points:
        Upper bound on the number of indices returned; at least 4.

    Returns
    -------
    numpy.ndarray
        Sorted, unique int64 indices into ``values``.

    Raises
    ------
    EvaluationError
        If ``max_points < 4`` or ``values`` is not 1-D.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise EvaluationError(f"values must be 1-D, got shape {data.shape}")
    if max_points < 4:
        raise EvaluationError(f"max_points must be at least 4, got {max_points}")
    n = data.size
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    bucket_size = math.ceil(n / (max_points // 4))
    n_buckets = math.ceil(n / bucket_size)
    pad = n_buckets * bucket_size - n
    lows = np.concatenate((data, np.full(pad, np.inf))).reshape(n_buckets, bucket_size)
    highs = np.concatenate((data, np.full(pad, -np.inf))).reshape(n_buckets, bucket_size)
    starts = np.arange(n_buckets, dtype=np.int64) * bucket_size
    middles = np.minimum(starts + bucket_size // 2, n - 1)
    picked = np.concatenate(
        (starts, middles, starts + lows.argmin(axis=1), starts + highs.argmax(axis=1))
    )
    return np.unique(picked)


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
class _PlotSpec:
    """Everything needed to draw one figure: small, picklable, no DataFrame."""

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


def _time_axis(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """Return x values, where they are valid, their label and whether they are datetimes."""
    if "ts" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["ts"]):
        ts = frame["ts"]
        if getattr(ts.dtype, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        x = ts.to_numpy(dtype="datetime64[ns]")
        return x, ~np.isnat(x), "time (UTC)", True
    if "time_s" in frame.columns:
        x = _column(frame, "time_s")
        return x, np.isfinite(x), "time since t0 [s]", False
    raise EvaluationError(
        "plotting needs a datetime 'ts' column or a 'time_s' column; "
        f"available columns: {', '.join(map(repr, map(str, frame.columns)))}"
    )


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _fit_spec(frame: pd.DataFrame, axis: str, max_points: int) -> _PlotSpec:
    require_columns(frame, [axis, f"{axis}_pred"], "the fit plot")
    x, x_valid, x_label, x_is_time = _time_axis(frame)
    values = _column(frame, axis)
    predicted = _column(frame, f"{axis}_pred")
    usable = x_valid & np.isfinite(values) & (values != 0.0) & np.isfinite(predicted)
    x, values, predicted = x[usable], values[usable], predicted[usable]
    keep_points = subsample_extremes(values, max_points)
    keep_line = subsample_extremes(predicted, max_points)
    return _PlotSpec(
        title=f"{axis}: data and fitted model",
        x_label=x_label,
        y_label=str(axis),
        x_is_time=x_is_time,
        points_x=x[keep_points],
        points_y=values[keep_points],
        points_label="data (idle and missing rows hidden)",
        n_total=int(values.size),
        line_x=x[keep_line],
        line_y=predicted[keep_line],
        line_label="fitted model",
    )


def _residual_spec(
    frame: pd.DataFrame,
    axis: str,
    minc: float | None,
    maxc: float | None,
    max_points: int,
) -> _PlotSpec:
    require_columns(frame, [f"{axis}_res"], "the residual plot")
    x, x_valid, x_label, x_is_time = _time_axis(frame)
    residuals = _column(frame, f"{axis}_res")
    usable = x_valid & np.isfinite(residuals)
    x, residuals = x[usable], residuals[usable]
    keep = subsample_extremes(residuals, max_points)
    levels: list[tuple[float, str, str]] = [(0.0, "zero", ZERO_COLOUR)]
    if minc is not None:
        levels.append((float(minc), f"MinC = {minc:.4g}", MINC_COLOUR))
    if maxc is not None:
        levels.append((float(maxc), f"MaxC = {maxc:.4g}", MAXC_COLOUR))
    return _PlotSpec(
        title=f"{axis}: residuals (value − model)",
        x_label=x_label,
        y_label=f"{axis} residual",
        x_is_time=x_is_time,
        points_x=x[keep],
        points_y=residuals[keep],
        points_label="residual",
        n_total=int(residuals.size),
        levels=tuple(levels),
    )


def _draw(spec: _PlotSpec) -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    # Fixed margins instead of a layout engine: the layout pass costs ~40% of a render.
    fig.subplots_adjust(left=0.08, right=0.985, bottom=0.13, top=0.91)
    ax = fig.add_subplot()
    ax.plot(
        spec.points_x,
        spec.points_y,
        linestyle="none",
        marker="o",
        markersize=2,
        markeredgewidth=0,
        alpha=0.6,
        color=DATA_COLOUR,
        label=spec.points_label,
    )
    if spec.line_x is not None and spec.line_y is not None:
        ax.plot(spec.line_x, spec.line_y, color=FIT_COLOUR, linewidth=2, label=spec.line_label)
    for level, label, colour in spec.levels:
        ax.axhline(level, color=colour, linestyle="--", linewidth=1.2, label=label)
    if spec.x_is_time:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_title(spec.title, loc="left")
    ax.set_xlabel(spec.x_label)
    ax.set_ylabel(spec.y_label)
    ax.grid(True, alpha=0.3)
    # Legend in one row above the axes, so it never hides data.
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(ax.get_legend_handles_labels()[1]),
        markerscale=4,
        frameon=False,
        fontsize="small",
    )
    shown = spec.points_y.size
    if spec.n_total == 0:
        ax.text(0.5, 0.5, "no usable samples", transform=ax.transAxes, ha="center")
    elif shown < spec.n_total:
        fig.text(
            0.005,
            0.005,
            f"subsampled: {shown} of {spec.n_total} points (bucket min, max, first, middle)",
            ha="left",
            va="bottom",
            fontsize="small",
            color="dimgray",
        )
    return fig


def plot_fit(frame: pd.DataFrame, axis: str, *, max_points: int = 20000) -> Figure:
    """Draw the axis signal (points) and the fitted model (line) against time.

    The x axis is ``ts`` when it is a datetime column (UTC), else ``time_s``. Idle (0) and
    missing (NaN) rows are not drawn.

    Parameters
    ----------
    frame:
        Frame from ``AxisModelSet.predict`` with ``axis`` and ``{axis}_pred``.
    axis:
        Axis column to draw.
    max_points:
        Subsample each series to at most this many points (see the module docstring).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EvaluationError
        If a needed column is missing.
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
    """Draw the residuals (points) with a dashed zero line and dashed MinC/MaxC lines.

    Parameters
    ----------
    frame:
        Frame with ``{axis}_res`` and a time column (``ts`` datetime or ``time_s``).
    axis:
        Axis to draw.
    minc, maxc:
        Thresholds to draw as dashed lines; omitted when ``None`` (default).
    max_points:
        Subsample to at most this many points (see the module docstring).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EvaluationError
        If a needed column is missing.
    """
    return _draw(_residual_spec(frame, axis, minc, maxc, max_points))


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at 100 dpi, creating parent folders; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=DPI, metadata={"Software": None})
    return target


def _render(spec: _PlotSpec, path: Path) -> Path:
    return save_figure(_draw(spec), path)


def render_plots(
    predicted: pd.DataFrame,
    axes: Sequence[str],
    thresholds: Mapping[str, Mapping[str, float]] | None,
    out_dir: str | Path,
    *,
    max_points: int = 20000,
    workers: int = 2,
) -> list[Path]:
    """Write ``{stem}_fit.png`` and ``{stem}_residual.png`` for every axis into ``out_dir``.

    Stems come from :func:`plot_file_stems`. The data for every figure is prepared (and
    subsampled) here first, so a bad column fails before anything is written; the figures
    are then drawn and saved, in ``workers`` threads when ``workers > 1``.

    Parameters
    ----------
    predicted:
        Frame from ``AxisModelSet.predict``.
    axes:
        Axes to plot.
    thresholds:
        Axis → record with ``"MinC"`` and ``"MaxC"`` (as in ``thresholds.json``); axes
        without a record, or ``None``, get residual plots without threshold lines.
    out_dir:
        Folder to write into (created if needed).
    max_points:
        Subsampling bound per series (default 20000).
    workers:
        Number of drawing threads (default 2); 1 draws everything in the calling thread.

    Returns
    -------
    list[pathlib.Path]
        Written files, per axis in ``axes`` order: fit, then residual.

    Raises
    ------
    EvaluationError
        If a needed column is missing.
    """
    folder = Path(out_dir)
    stems = plot_file_stems(list(axes))
    jobs: list[tuple[_PlotSpec, Path]] = []
    for axis in axes:
        record = (thresholds or {}).get(axis, {})
        jobs.append((_fit_spec(predicted, axis, max_points), folder / f"{stems[axis]}_fit.png"))
        jobs.append(
            (
                _residual_spec(predicted, axis, record.get("MinC"), record.get("MaxC"), max_points),
                folder / f"{stems[axis]}_residual.png",
            )
        )
    if workers <= 1 or len(jobs) <= 1:
        return [_render(spec, path) for spec, path in jobs]
    # Threads, not processes: on 2 cores a process pool spends more on worker start-up
    # (importing pandas and matplotlib) than it saves; threads cost nothing to start and
    # overlap PNG encoding. Each job owns its Figure and file, so results are deterministic.
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_render, [spec for spec, _ in jobs], [path for _, path in jobs]))
