"""Fit and residual plots per axis: what each figure shows, and drawing them in parallel.

This module computes each figure's data (:class:`PlotSpec`, subsampled); the drawing itself
is in :mod:`ModelEvaluation.figures`, the only module that imports matplotlib, which is
imported where figures are drawn: in :class:`PlotRenderer`'s worker processes, or on the
first :func:`plot_fit`/:func:`plot_residuals`/:func:`save_figure` call. Plot functions return
plain :class:`matplotlib.figure.Figure` objects (no pyplot state).

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

import contextlib
import hashlib
import logging
import math
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .evaluator import EvaluationError, require_columns

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "AxisPlotData",
    "PlotRenderer",
    "PlotSpec",
    "axis_plot_data",
    "plot_file_stems",
    "plot_fit",
    "plot_residuals",
    "render_plots",
    "safe_file_stem",
    "save_figure",
    "subsample_extremes",
    "write_plots",
]

logger = logging.getLogger(__name__)

ZERO_COLOUR = "black"
MINC_COLOUR = "tab:orange"
MAXC_COLOUR = "tab:purple"
_ZERO_LEVEL = ((0.0, "zero", ZERO_COLOUR),)
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
    full = n // bucket_size
    # Full buckets are a reshaped view (no copy); a shorter last bucket is reduced on its own.
    body = data[: full * bucket_size].reshape(full, bucket_size)
    lows, highs = body.argmin(axis=1), body.argmax(axis=1)
    if full < n_buckets:
        tail = data[full * bucket_size :]
        lows = np.append(lows, tail.argmin())
        highs = np.append(highs, tail.argmax())
    starts = np.arange(n_buckets, dtype=np.int64) * bucket_size
    middles = np.minimum(starts + bucket_size // 2, n - 1)
    return np.unique(np.concatenate((starts, middles, starts + lows, starts + highs)))


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


_RANK_BLOCK = 1 << 16


def _rows_of(mask: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Row index of the ``ranks``-th True entries of ``mask`` (``ranks`` sorted).

    Works block by block, so no full-length index array (8 bytes per row) is built.
    """
    if ranks.size == 0 or mask.all():
        return ranks
    starts = np.arange(0, mask.size, _RANK_BLOCK)
    full = mask.size // _RANK_BLOCK * _RANK_BLOCK
    counts = np.count_nonzero(mask[:full].reshape(-1, _RANK_BLOCK), axis=1)
    if full < mask.size:
        counts = np.append(counts, np.count_nonzero(mask[full:]))
    ends = np.cumsum(counts)
    blocks = np.searchsorted(ends, ranks, side="right")
    rows = np.empty_like(ranks)
    for block in np.unique(blocks):
        chosen = blocks == block
        start = int(starts[block])
        inside = np.flatnonzero(mask[start : start + _RANK_BLOCK])
        rows[chosen] = start + inside[ranks[chosen] - (ends[block] - counts[block])]
    return rows


@dataclass(frozen=True)
class _Picked:
    """The subsampled points of one series: row indices, values, how many rows were usable."""

    rows: np.ndarray
    values: np.ndarray
    n_total: int


def _pick(values: np.ndarray, usable: np.ndarray, max_points: int) -> _Picked:
    """Subsample ``values[usable]`` (see :func:`subsample_extremes`) into at most max_points.

    Only the values are gathered; the x of each kept point is looked up by its row
    (:func:`_rows_of`) instead of gathering the x column as well.
    """
    gathered = values[usable]  # faster than np.compress on masks with long runs
    keep = subsample_extremes(gathered, max_points)
    return _Picked(rows=_rows_of(usable, keep), values=gathered[keep], n_total=gathered.size)


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
        points = _pick(values, usable, max_points)
        line = predicted[points.rows]
    else:
        residuals = _column(frame, residual_column)
        if usable is None:
            usable = _residual_rows(time_axis, residuals)
        points = _pick(values, usable, max_points)
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
    points = _pick(residuals, usable, max_points)
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


def _levels(spec: PlotSpec, minc: float | None, maxc: float | None) -> PlotSpec:
    """``spec`` with dashed MinC/MaxC lines added to its levels (each only when not None)."""
    levels = list(spec.levels)
    if minc is not None:
        levels.append((float(minc), f"MinC = {minc:.4g}", MINC_COLOUR))
    if maxc is not None:
        levels.append((float(maxc), f"MaxC = {maxc:.4g}", MAXC_COLOUR))
    return replace(spec, levels=tuple(levels))


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
    """Compute (and subsample) what the two figures of ``axis`` draw.

    Parameters
    ----------
    frame:
        Frame with a time column (``ts`` datetime, else ``time_s``), ``axis`` and
        ``{axis}_res``; with ``{axis}_pred`` too the fitted line is taken from it, else
        it is value minus residual (no full-length prediction column is needed).
    axis:
        Axis to draw.
    max_points:
        Subsample each series to at most this many points (see the module docstring).

    Raises
    ------
    EvaluationError
        If a needed column is missing.
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
    """Draw the axis signal (points) and the fitted model (line) against time.

    The x axis is ``ts`` when it is a datetime column (UTC), else ``time_s``. Idle (0) and
    missing (NaN) rows are not drawn.

    Parameters
    ----------
    frame:
        Frame from ``AxisModelSet.predict`` with ``axis`` and ``{axis}_pred``; or with
        ``{axis}_res`` instead of ``{axis}_pred`` (the model is then value minus residual).
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
    return _draw(_levels(_residual_spec(frame, axis, max_points), minc, maxc))


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


def _render_png(spec: PlotSpec) -> bytes:
    from .figures import render_png

    return render_png(spec)


_WORKER_BOOTSTRAP = (
    "import runpy, sys\n"
    "if sys.path and sys.path[0] == '': sys.path.pop(0)\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)
"""Runs figures.py as a script without the working directory on the path (``-c`` puts it
first, unless PYTHONSAFEPATH is set): the worker imports numpy and matplotlib, nothing else."""


_WORKER_SECONDS_PER_FIGURE = 30.0
"""Longest wait for any worker's next answer (a figure takes ~0.1 s); then the workers still
busy are taken as hung and killed."""


def _end_input(worker: subprocess.Popen[bytes]) -> None:
    """Close the worker's stdin: a live worker exits at the end of its input."""
    assert worker.stdin is not None
    with contextlib.suppress(OSError):  # a dead worker's pipe may refuse the final flush
        worker.stdin.close()


def _spec_fields(spec: PlotSpec) -> dict[str, object]:
    """The spec as plain data: unpickling it needs numpy only, not this package."""
    return {item.name: getattr(spec, item.name) for item in fields(spec)}


class PlotRenderer:
    """Worker processes that draw figures into PNG bytes, side by side.

    Drawing with matplotlib is pure Python: threads would take turns on one core, processes
    do not. Each worker is ``figures.py`` run as a script, fed pickled figure data over its
    stdin and answering PNG bytes on its stdout. The workers start, and import matplotlib,
    as soon as the renderer is created; the training run creates it before it reads the
    window, so they are ready when the plots are due. Close it (or use it as a context
    manager) to stop them.

    Not a :mod:`multiprocessing` pool on purpose: those workers import the caller's main
    script, and would run the top level of a script without an ``if __name__ ==
    "__main__":`` guard again. These run no code of the caller.

    Should a worker fail to start, die, or fail to draw a figure, the figures it did not
    deliver are drawn in this process (with a warning): a run never loses its plots to
    them, and a figure that cannot be drawn raises here as it would without workers.

    Parameters
    ----------
    processes:
        Worker processes (at least 1).
    hide_env:
        Environment variables the workers do not get (the database URL: they need none).

    Raises
    ------
    ValueError
        If ``processes`` is not an integer >= 1.
    """

    def __init__(self, processes: int = 2, *, hide_env: Sequence[str] = ()) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be an integer >= 1, got {processes!r}")
        self.processes = processes
        hidden = set(hide_env)
        env = {name: value for name, value in os.environ.items() if name not in hidden}
        self._workers: list[subprocess.Popen[bytes]] = []
        self._exiting: list[subprocess.Popen[bytes]] = []  # told to stop, not reaped yet
        self._dead: set[subprocess.Popen[bytes]] = set()  # failed: never used again
        self._failures: list[str] = []
        script = str(Path(__file__).with_name("figures.py"))
        if not sys.executable:  # an embedded interpreter: nothing to start workers with
            self._failures.append("no Python executable (sys.executable is empty)")
            return
        try:
            for _ in range(processes):
                self._workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _WORKER_BOOTSTRAP, script],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                    )
                )
        except OSError as exc:
            self._failures.append(f"starting a worker: {exc}")

    def _drive(
        self,
        worker: subprocess.Popen[bytes],
        tasks: queue.SimpleQueue[tuple[int, PlotSpec]],
        images: list[bytes | None],
        notices: queue.SimpleQueue[bool],
    ) -> None:
        """Feed ``worker`` one figure at a time until no task is left or the worker fails.

        Puts ``True`` on ``notices`` after each answer and ``False`` when done.
        """
        assert worker.stdin is not None and worker.stdout is not None
        try:
            while True:
                try:
                    index, spec = tasks.get_nowait()
                except queue.Empty:
                    return
                try:
                    request = _spec_fields(spec)
                    pickle.dump(request, worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    worker.stdin.flush()
                    drawn, payload = pickle.load(worker.stdout)
                except Exception as exc:  # a broken pipe, a dead worker, a garbled reply
                    self._failures.append(f"worker {worker.pid} stopped: {type(exc).__name__}")
                    self._dead.add(worker)
                    worker.kill()  # whatever state it is in, it is not used again
                    return  # this figure and those left are drawn by the caller
                notices.put(True)
                if not drawn:
                    failure = f"worker {worker.pid} could not draw a figure: {payload}"
                    self._failures.append(failure)
                    continue
                images[index] = payload
        finally:
            notices.put(False)

    def render(self, specs: Sequence[PlotSpec]) -> list[bytes]:
        """PNG bytes of every spec, in order: the bytes drawing them here would give (with the
        same matplotlib settings: a notebook's changes to ``rcParams`` do not reach workers).

        A worker that answers nothing for 30 s is killed; what it did not draw is drawn here.
        """
        images: list[bytes | None] = [None] * len(specs)
        tasks: queue.SimpleQueue[tuple[int, PlotSpec]] = queue.SimpleQueue()
        for task in enumerate(specs):
            tasks.put(task)
        notices: queue.SimpleQueue[bool] = queue.SimpleQueue()
        drivers = {
            worker: threading.Thread(
                target=self._drive, args=(worker, tasks, images, notices), daemon=True
            )
            for worker in self._workers
        }
        for driver in drivers.values():
            driver.start()
        running = len(drivers)
        while running:
            try:
                running -= not notices.get(timeout=_WORKER_SECONDS_PER_FIGURE)
            except queue.Empty:  # no answer from any worker for that long: the busy ones hang
                for worker, driver in drivers.items():
                    if driver.is_alive():
                        self._failures.append(f"worker {worker.pid} did not answer in time")
                        self._dead.add(worker)
                        worker.kill()  # ends its driver's wait
                for driver in drivers.values():
                    driver.join()
                break
        dead = [worker for worker in self._workers if worker in self._dead]
        self._workers = [worker for worker in self._workers if worker not in self._dead]
        for worker in dead:
            _end_input(worker)
        self._exiting += dead  # reaped by close()
        if self._failures:
            logger.warning(
                "plot workers failed (%s); drawing their figures in this process "
                "(plots.workers: 0 draws every figure here)",
                "; ".join(self._failures),
            )
            self._failures.clear()
        return [
            image if image is not None else _render_png(spec)
            for image, spec in zip(images, specs, strict=True)
        ]

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker processes (idempotent); later figures are drawn in this process.

        End of input lets each worker exit on its own; ``wait`` (default) also reaps them,
        killing one that does not exit within 10 s. ``wait=False`` returns at once: call
        ``close()`` again later to reap them.
        """
        stopping, self._workers = self._workers, []
        for worker in stopping:
            _end_input(worker)
        self._exiting += stopping
        if not wait:
            return
        while self._exiting:  # one at a time: an interrupt leaves the rest to a later close()
            worker = self._exiting[0]
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            assert worker.stdout is not None
            worker.stdout.close()
            self._exiting.pop(0)

    def __enter__(self) -> PlotRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_plots(
    data: Sequence[AxisPlotData],
    thresholds: Mapping[str, Mapping[str, float]] | None,
    out_dir: str | Path,
    *,
    renderer: PlotRenderer | None = None,
) -> list[Path]:
    """Draw and write ``{stem}_fit.png`` and ``{stem}_residual.png`` for every axis of ``data``.

    Stems come from :func:`plot_file_stems`. The figures are drawn into memory and written
    once all of them exist, so a failing figure writes nothing.

    Parameters
    ----------
    data:
        One :func:`axis_plot_data` per axis, in output order.
    thresholds:
        Axis → record with ``"MinC"`` and ``"MaxC"`` (as in ``thresholds.json``); axes
        without a record, or ``None``, get residual plots without threshold lines.
    out_dir:
        Folder to write into (created if needed).
    renderer:
        Worker processes to draw in; ``None`` (default) draws in this process.

    Returns
    -------
    list[pathlib.Path]
        Written files, per axis in ``data`` order: fit, then residual.

    """
    folder = Path(out_dir)
    stems = plot_file_stems([item.axis for item in data])
    specs: list[PlotSpec] = []
    paths: list[Path] = []
    for item in data:
        record = (thresholds or {}).get(item.axis, {})
        specs += [item.fit, _levels(item.residual, record.get("MinC"), record.get("MaxC"))]
        stem = stems[item.axis]
        paths += [folder / f"{stem}_fit.png", folder / f"{stem}_residual.png"]
    images = renderer.render(specs) if renderer else [_render_png(spec) for spec in specs]
    for path, image in zip(paths, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)
    return paths


def render_plots(
    predicted: pd.DataFrame | Mapping[str, pd.DataFrame],
    axes: Sequence[str],
    thresholds: Mapping[str, Mapping[str, float]] | None,
    out_dir: str | Path,
    *,
    max_points: int = 20000,
    workers: int = 0,
) -> list[Path]:
    """Write ``{stem}_fit.png`` and ``{stem}_residual.png`` for every axis into ``out_dir``.

    :func:`axis_plot_data` for every axis, then :func:`write_plots`: a bad column fails
    before anything is written.

    Parameters
    ----------
    predicted:
        Frame from ``AxisModelSet.predict``; or a mapping axis → such a frame holding that
        axis, read once per axis, so frames computed on access are in memory one at a time.
    axes:
        Axes to plot.
    thresholds:
        Axis → record with ``"MinC"`` and ``"MaxC"``; see :func:`write_plots`.
    out_dir:
        Folder to write into (created if needed).
    max_points:
        Subsampling bound per series (default 20000).
    workers:
        Worker processes to draw in (a :class:`PlotRenderer` for this call); 0 (default)
        draws in this process.

    Returns
    -------
    list[pathlib.Path]
        Written files, per axis in ``axes`` order: fit, then residual.

    Raises
    ------
    EvaluationError
        If a needed column is missing.
    """
    shared = isinstance(predicted, pd.DataFrame)
    data = [
        axis_plot_data(predicted if shared else predicted[axis], axis, max_points=max_points)
        for axis in axes
    ]
    if workers < 1:
        return write_plots(data, thresholds, out_dir)
    with PlotRenderer(workers) as renderer:
        return write_plots(data, thresholds, out_dir, renderer=renderer)
