"""Score a time-sorted frame: per-axis levels, the worst level, and the rows of one window."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._time import time_axis
from .errors import ScoringInputError
from .events import extract_events
from .levels import assign_levels, level_labels
from .rules import AxisRule, parse_thresholds

__all__ = ["ScoreResult", "lookback_samples", "score_frame"]

logger = logging.getLogger(__name__)


def lookback_samples(thresholds: Mapping[str, Mapping[str, Any]]) -> int:
    """Rows of context needed before a window so its levels do not depend on where it starts.

    Returns ``L = T - 1`` with ``T`` the largest ``T_long_steps`` or ``T_short_steps`` of any
    axis. The same ``L`` rows *after* a window make its levels final (see below).

    Why ``L`` rows suffice. Fix an axis and one of its two rules, "above ``c`` for ``t``
    samples" with ``t <= T``. Sample ``i`` lies in a maximal run of at least ``t`` samples above
    ``c`` exactly when some block of ``t`` consecutive samples, all above ``c``, contains ``i``:
    such a block starts at some ``j`` with ``i - t + 1 <= j <= i``, so it lies inside
    ``[i - t + 1, i + t - 1]`` — at most ``t - 1 <= L`` rows before ``i`` and ``L`` after. Whether
    a sample is above ``c`` and whether it is idle depend on that sample alone, and the level is
    a function of these per-sample facts and the two run predicates. Hence the level of ``i`` is
    the same in every frame that contains ``[i - L, i + L]`` (or reaches the end of the data on
    either side). A window ``[start, end)`` scored with ``L`` look-back rows contains
    ``[i - L, i]`` for all its samples, so scoring back-to-back windows that way gives, for each
    window, exactly the levels that scoring the union of all the data up to that window's end
    gives. Fewer rows are not enough: a run of exactly ``T`` samples whose last sample is the
    first row of the window is cut to ``T - 1`` by ``L - 1`` look-back rows and its last sample
    loses its alert/error.

    What look-back cannot fix. The rule is not causal: the first samples of a run become alert
    only once the run reaches ``T`` samples. So the last ``L`` rows of a window are provisional
    while a run is still open at the window's end; the next window can raise them (levels only
    ever go up, because cutting a run only shortens it). Scoring a past range with ``L`` rows of
    look-ahead too (``window_end``) makes every level in it final, and then back-to-back windows
    equal their union exactly. Runs count rows, not seconds, so fetch the look-back as the ``L``
    rows before the window start (``ORDER BY ts DESC LIMIT L``) with the same filters.

    Raises
    ------
    ScoringInputError
        If ``thresholds`` is empty or an entry is invalid.
    """
    rules = parse_thresholds(thresholds)
    return max(rule.longest_run for rule in rules.values()) - 1


@dataclass(frozen=True)
class ScoreResult:
    """Levels of the rows inside the scored window.

    Attributes
    ----------
    frame:
        One row per sample of the window: ``ts``, then per axis ``{axis}_residual`` and
        ``{axis}_level``, then ``level`` (worst across axes). Level columns are ordered
        categoricals of ``idle < ok < alert < error`` (see ``LEVEL_DTYPE``).
    axes:
        The scored axes, in output order.
    rules:
        The validated alarm rule per axis.
    level_codes:
        Axis → read-only ``int8`` codes of :class:`Level` for the window rows.
    worst_codes:
        Read-only ``int8`` worst level per window row.
    context_before, context_after:
        Rows of look-back and look-ahead that were scored but left out of ``frame``.
    """

    frame: pd.DataFrame
    axes: tuple[str, ...]
    rules: Mapping[str, AxisRule]
    level_codes: Mapping[str, np.ndarray]
    worst_codes: np.ndarray
    context_before: int
    context_after: int

    @property
    def residuals(self) -> dict[str, np.ndarray]:
        """Axis → ``float64`` residuals of the window rows (read-only views of ``frame``)."""
        return {axis: self.frame[f"{axis}_residual"].to_numpy() for axis in self.axes}

    def events(
        self, *, merge_gap_seconds: float = 0.0, cooldown_seconds: float = 0.0
    ) -> pd.DataFrame:
        """The events of the window rows; see :func:`Scoring.extract_events`."""
        return extract_events(
            self.frame["ts"],
            self.residuals,
            self.level_codes,
            {axis: rule.model_dump(by_alias=True) for axis, rule in self.rules.items()},
            axes=self.axes,
            merge_gap_seconds=merge_gap_seconds,
            cooldown_seconds=cooldown_seconds,
        )


def score_frame(
    frame: pd.DataFrame,
    residuals: pd.DataFrame | None,
    thresholds: Mapping[str, Mapping[str, Any]],
    *,
    window_start: Any = None,
    window_end: Any = None,
) -> ScoreResult:
    """Levels of every axis in ``thresholds`` for the rows with ``window_start <= ts < window_end``.

    Levels are computed on the whole frame, so rows before ``window_start`` (look-back, see
    :func:`lookback_samples`) and after ``window_end`` (look-ahead) give runs that cross the
    window edges their full length; only the window rows are returned.

    Parameters
    ----------
    frame:
        Sorted by ``ts`` (UTC datetimes or float epoch seconds), one float column per axis
        (0 or NaN = idle).
    residuals:
        ``{axis}_res`` columns aligned row for row with ``frame`` (same index), or ``None`` when
        ``frame`` itself holds them.
    thresholds:
        Axis → thresholds entry (``MinC``, ``MaxC``, ``T_long_steps``, ``T_short_steps``); the
        axes are scored in this order.
    window_start, window_end:
        Window bounds, default unbounded; timestamps (naive ones are read as UTC) when ``ts``
        holds datetimes, epoch seconds (or timestamps) when it holds numbers.

    Returns
    -------
    ScoreResult

    Raises
    ------
    ScoringInputError
        Listing every missing or non-numeric column; or on invalid thresholds, unsorted ``ts``,
        misaligned residuals, unusable window bounds or ``window_end`` before ``window_start``.
    """
    rules = parse_thresholds(thresholds)
    axes = tuple(rules)
    if not isinstance(frame, pd.DataFrame):
        raise ScoringInputError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if residuals is not None and not isinstance(residuals, pd.DataFrame):
        raise ScoringInputError(
            f"residuals must be a pandas DataFrame of '{{axis}}_res' columns or None, got "
            f"{type(residuals).__name__}"
        )
    source = frame if residuals is None else residuals
    if residuals is not None and not residuals.index.equals(frame.index):
        raise ScoringInputError(
            "residuals are not aligned with frame (different index); pass the frame returned by "
            "the model's predict, or reset both indexes"
        )
    _check_columns(frame, source, axes, "frame" if residuals is None else "residuals")

    times = time_axis(frame["ts"], "frame.ts")
    n_rows = len(frame)
    first = 0 if window_start is None else times.position(window_start, "window_start")
    stop = n_rows if window_end is None else times.position(window_end, "window_end")
    if stop < first:
        raise ScoringInputError(
            f"window_end {window_end!r} is before window_start {window_start!r}; swap them"
        )
    window = slice(first, stop)

    level_codes: dict[str, np.ndarray] = {}
    columns: dict[str, Any] = {"ts": frame["ts"].iloc[window].reset_index(drop=True)}
    for axis, rule in rules.items():
        values = frame[axis].to_numpy(dtype=np.float64, na_value=np.nan)
        axis_residuals = source[f"{axis}_res"].to_numpy(dtype=np.float64, na_value=np.nan)
        codes = assign_levels(
            values,
            axis_residuals,
            minc=rule.min_c,
            maxc=rule.max_c,
            t_long=rule.t_long,
            t_short=rule.t_short,
        )[window]
        codes.flags.writeable = False
        level_codes[axis] = codes
        columns[f"{axis}_residual"] = np.array(axis_residuals[window])
        columns[f"{axis}_level"] = level_labels(codes)
    worst = level_codes[axes[0]].copy()
    for axis in axes[1:]:
        np.maximum(worst, level_codes[axis], out=worst)
    worst.flags.writeable = False
    columns["level"] = level_labels(worst)
    # The columns above are fresh arrays owned by this frame alone, so they need no second copy
    # (and no consolidation into one block, which costs more than the scoring itself).
    out = pd.DataFrame(columns, copy=False)
    logger.debug(
        "scored %d axes on %d rows, kept %d window rows (%d before, %d after)",
        len(axes),
        n_rows,
        stop - first,
        first,
        n_rows - stop,
    )
    return ScoreResult(
        frame=out,
        axes=axes,
        rules=rules,
        level_codes=level_codes,
        worst_codes=worst,
        context_before=first,
        context_after=n_rows - stop,
    )


def _check_columns(
    frame: pd.DataFrame, source: pd.DataFrame, axes: tuple[str, ...], source_name: str
) -> None:
    """Raise one error naming every missing or non-numeric column."""
    wanted = [("frame", frame, "ts")]
    wanted += [("frame", frame, axis) for axis in axes]
    wanted += [(source_name, source, f"{axis}_res") for axis in axes]
    problems: list[str] = []
    for table_name, table, column in wanted:
        if column not in table.columns:
            problems.append(f"{table_name}: missing column {column!r}")
            continue
        dtype = table[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if column != "ts" and not numeric:
            problems.append(f"{table_name}.{column}: expected floats, got dtype {dtype}")
    if problems:
        raise ScoringInputError(
            "cannot score: "
            + "; ".join(problems)
            + f". The thresholds cover axes {list(axes)}; the frame needs 'ts' and one value "
            "column per axis, and every axis needs an '{axis}_res' residual column (the "
            "model's predict adds them)"
        )
