"""Score a time-sorted frame: per-axis levels, the worst level, and the rows of one window."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from Thresholding import smooth, ssr_score, ssr_shares

from ._time import TimeAxis, time_axis
from .errors import ScoringInputError
from .events import extract_events, sensor_events
from .levels import active_mask, assign_levels, level_labels, mark_sensor_faults
from .rules import MACHINE_CHANNEL, AxisRule, parse_thresholds

__all__ = ["MachineShares", "ScoreResult", "lookahead_samples", "lookback_samples", "score_frame"]

logger = logging.getLogger(__name__)


def lookback_samples(
    thresholds: Mapping[str, Mapping[str, Any]],
    model_lookback: int = 0,
    sensor_steps: int | None = None,
) -> int:
    """Rows of context needed before a window so its levels do not depend on where it starts.

    Returns ``L = T - 1 + S - 1 + M`` with ``T`` the largest ``T_long_steps`` or
    ``T_short_steps`` of any channel, ``S`` the widest smoothing span (1 without smoothing)
    and ``M`` the rows the models' predictions look back (``model_lookback``, e.g. an ``ar``
    model's lags). ``T - 1`` rows *after* a window make its levels final
    (:func:`lookahead_samples`).
    The argument below is for ``S = 1, M = 0``; a residual that needs ``M`` earlier rows and a
    smoothed residual that needs ``S - 1`` earlier residuals push the same bound back by those
    rows.

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
    rules = parse_thresholds(thresholds)  # validated once for both bounds
    runs = _longest_run(rules, sensor_steps) - 1
    # The machine channel reads every axis's smoothed residual, so the widest span counts.
    span = max(rule.smoothing.span for rule in rules.values()) - 1
    return runs + span + int(model_lookback)


def lookahead_samples(
    thresholds: Mapping[str, Mapping[str, Any]], sensor_steps: int | None = None
) -> int:
    """Rows after a window that make its levels final: ``T - 1`` (see :func:`lookback_samples`)."""
    return _longest_run(parse_thresholds(thresholds), sensor_steps) - 1


def _longest_run(rules: Mapping[str, AxisRule], sensor_steps: int | None) -> int:
    """``T``: the longest run any rule needs, sensor faults (``sensor_steps``) included."""
    return max(max(rule.longest_run for rule in rules.values()), sensor_steps or 1)


class MachineShares:
    """Each axis's share of the machine score per window row, computed for the rows asked for.

    ``shares[row]`` is the 1-D array of the axes' ``z²`` over their sum at that window row (NaN
    for an axis without a finite residual); ``np.asarray(shares)`` builds the whole rows × axes
    array. Events read only their peak rows, so scoring never builds the matrix (8 axes of a
    10 M-row window: 640 MB).
    """

    def __init__(
        self, residuals: list[np.ndarray], centers: list[float], scales: list[float]
    ) -> None:
        self._residuals = residuals
        self._centers = centers
        self._scales = scales

    @property
    def shape(self) -> tuple[int, int]:
        """(window rows, axes)."""
        return (len(self), len(self._residuals))

    def __len__(self) -> int:
        return self._residuals[0].size if self._residuals else 0

    def __getitem__(self, rows: int | np.ndarray) -> np.ndarray:
        """The shares at window row ``rows`` (1-D), or at each of an array of rows (2-D)."""
        if np.ndim(rows) == 0:
            return ssr_shares(self._residuals, self._centers, self._scales, np.array([rows]))[0]
        return ssr_shares(self._residuals, self._centers, self._scales, np.asarray(rows))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        whole = ssr_shares(self._residuals, self._centers, self._scales, slice(None))
        return whole if dtype is None else whole.astype(dtype, copy=False)


@dataclass(frozen=True)
class ScoreResult:
    """Levels of the rows inside the scored window.

    Attributes
    ----------
    frame:
        One row per sample of the window: ``ts``, then per axis ``{axis}_residual`` (as
        compared with the thresholds: smoothed when smoothing is on) and ``{axis}_level``,
        then with a machine channel ``machine_score`` and ``machine_level``, then ``level``
        (worst across all). Level columns are ordered categoricals of
        ``idle < ok < alert < error`` (see ``LEVEL_DTYPE``).
    axes:
        The scored axes, in output order.
    rules:
        The validated alarm rule per channel (axes, and ``*`` for the machine channel).
    level_codes:
        Channel → read-only ``int8`` codes of :class:`Level` for the window rows.
    worst_codes:
        Read-only ``int8`` worst level per window row.
    context_before, context_after:
        Rows of look-back and look-ahead that were scored but left out of ``frame``.
    values, raw_residuals:
        Axis → actual value and residual before smoothing per window row (views of the input);
        :attr:`expected` is their difference.
    sensor_steps:
        Shortest run of a sensor fault (see ``score_frame``); None: not marked.
    shares:
        Window rows × axes: each axis's share of the machine score (its ``z²`` over their
        sum), computed for the rows read (see :class:`MachineShares`); None without a machine
        channel.
    """

    frame: pd.DataFrame
    axes: tuple[str, ...]
    rules: Mapping[str, AxisRule]
    level_codes: Mapping[str, np.ndarray]
    worst_codes: np.ndarray
    context_before: int
    context_after: int
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    raw_residuals: Mapping[str, np.ndarray] = field(default_factory=dict)
    shares: MachineShares | None = None
    sensor_steps: int | None = None

    @property
    def expected(self) -> dict[str, np.ndarray]:
        """Axis → expected value per window row (actual − raw residual), computed on access."""
        return {axis: self.values[axis] - self.raw_residuals[axis] for axis in self.raw_residuals}

    @property
    def channels(self) -> tuple[str, ...]:
        """The axes, then ``*`` when the machine channel is on."""
        return (*self.axes, MACHINE_CHANNEL) if MACHINE_CHANNEL in self.rules else self.axes

    @property
    def residuals(self) -> dict[str, np.ndarray]:
        """Channel → ``float64`` compared residuals (machine score for ``*``) of the window."""
        out = {axis: self.frame[f"{axis}_residual"].to_numpy() for axis in self.axes}
        if MACHINE_CHANNEL in self.rules:
            out[MACHINE_CHANNEL] = self.frame["machine_score"].to_numpy()
        return out

    def events(
        self, *, merge_gap_seconds: float = 0.0, cooldown_seconds: float = 0.0
    ) -> pd.DataFrame:
        """The events of the window rows; see :func:`Scoring.extract_events`; then, with
        ``sensor_steps``, the ``sensor`` events (:func:`Scoring.sensor_events`)."""
        times = time_axis(self.frame["ts"])  # validated once, for both kinds of event
        alarms = self._alarm_events(times, merge_gap_seconds, cooldown_seconds)
        if self.sensor_steps is None:
            return alarms
        faults = sensor_events(times, self.level_codes, self.axes, self.sensor_steps)
        if faults.empty:
            return alarms
        if alarms.empty:
            return faults.reset_index(drop=True)
        joined = pd.concat([alarms, faults], ignore_index=True)
        return joined.sort_values("start", kind="stable").reset_index(drop=True)

    def _alarm_events(
        self, times: TimeAxis, merge_gap_seconds: float, cooldown_seconds: float
    ) -> pd.DataFrame:
        return extract_events(
            times,
            self.residuals,
            self.level_codes,
            {name: rule.model_dump(by_alias=True) for name, rule in self.rules.items()},
            axes=self.channels,
            merge_gap_seconds=merge_gap_seconds,
            cooldown_seconds=cooldown_seconds,
            values=self.values,
            raw_residuals=self.raw_residuals,
            contributions=None if self.shares is None else (self.axes, self.shares),
        )


def score_frame(
    frame: pd.DataFrame,
    residuals: pd.DataFrame | None,
    thresholds: Mapping[str, Mapping[str, Any]],
    *,
    window_start: Any = None,
    window_end: Any = None,
    machine_scores: np.ndarray | None = None,
    sensor_steps: int | None = None,
    machine_off: np.ndarray | None = None,
) -> ScoreResult:
    """Levels of every channel of ``thresholds`` for rows with ``window_start <= ts < window_end``.

    Levels are computed on the whole frame, so rows before ``window_start`` (look-back, see
    :func:`lookback_samples`) and after ``window_end`` (look-ahead) give runs that cross the
    window edges their full length; only the window rows are returned.

    Per axis, the residuals are smoothed as its rule says, then compared with its thresholds
    (both sides when the rule has them). The machine channel (``*`` in ``thresholds``) scores
    ``machine_scores`` when given (a machine model's score per row), else the mean over the
    active axes of ``z² = ((r − center) / scale)²``.

    Parameters
    ----------
    frame:
        Sorted by ``ts`` (UTC datetimes or float epoch seconds), one float column per axis
        (0 or NaN = idle).
    residuals:
        ``{axis}_res`` columns aligned row for row with ``frame`` (same index), or ``None`` when
        ``frame`` itself holds them.
    thresholds:
        Channel → thresholds entry (``MinC``, ``MaxC``, ``T_long_steps``, ``T_short_steps``,
        optionally the lower side, ``center``, ``scale``, ``smoothing``); the axes are scored
        in this order.
    window_start, window_end:
        Window bounds, default unbounded; timestamps (naive ones are read as UTC) when ``ts``
        holds datetimes, epoch seconds (or timestamps) when it holds numbers.
    machine_scores:
        A machine model's score per row of ``frame``.
    sensor_steps:
        With two or more axes: an axis that is 0 or NaN while another axis is active, for at
        least this many consecutive samples, is ``sensor`` (a dead sensor) instead of ``idle``
        (the machine at rest: every axis inactive). None (default): no sensor level.
    machine_off:
        Per row of ``frame``, whether the machine is off by a configured condition (e.g. its
        drive current below a level): every axis is idle there, whatever its value.

    Returns
    -------
    ScoreResult

    Raises
    ------
    ScoringInputError
        Listing every missing or non-numeric column; or on invalid thresholds, unsorted ``ts``,
        misaligned residuals or scores, unusable window bounds or ``window_end`` before
        ``window_start``.
    """
    rules = parse_thresholds(thresholds)
    axes = tuple(name for name in rules if name != MACHINE_CHANNEL)
    if machine_off is not None:
        machine_off = np.asarray(machine_off, dtype=bool)
        if machine_off.shape != (len(frame),):
            raise ScoringInputError(
                f"machine_off has shape {machine_off.shape} but frame has {len(frame)} rows"
            )
    if not axes:
        raise ScoringInputError("thresholds name no axis besides the machine channel '*'")
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
    if machine_scores is not None and len(machine_scores) != len(frame):
        raise ScoringInputError(
            f"machine_scores has {len(machine_scores)} entries but frame has {len(frame)} rows"
        )

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
    values_out: dict[str, np.ndarray] = {}
    raw_out: dict[str, np.ndarray] = {}
    compared_all: list[np.ndarray] = []
    actives: list[np.ndarray] = []
    full_codes: list[np.ndarray] = []
    residual_columns: list[pd.Series] = []  # looked up once (a column lookup costs ~30 µs)
    for axis in axes:
        rule = rules[axis]
        values = frame[axis].to_numpy(dtype=np.float64, na_value=np.nan)
        residual_columns.append(source[f"{axis}_res"])
        raw = residual_columns[-1].to_numpy(dtype=np.float64, na_value=np.nan)
        compared = smooth(raw, rule.smoothing)
        active = active_mask(values)
        if machine_off is not None:
            active &= ~machine_off
        full_codes.append(
            assign_levels(
                values,
                compared,
                minc=rule.min_c,
                maxc=rule.max_c,
                t_long=rule.t_long,
                t_short=rule.t_short,
                minc_low=rule.min_c_low if rule.lower else None,
                maxc_low=rule.max_c_low if rule.lower else None,
                upper=rule.upper,
                active=active,
            )
        )
        actives.append(active)
        compared_all.append(compared)
        values_out[axis] = values[window]
        raw_out[axis] = raw[window]
    if sensor_steps is not None:
        mark_sensor_faults(full_codes, actives, sensor_steps)
    active_any = np.zeros(n_rows, dtype=bool)
    for axis, codes, active, compared, residual in zip(
        axes, full_codes, actives, compared_all, residual_columns, strict=True
    ):
        active_any |= active
        codes = codes[window]
        codes.flags.writeable = False
        level_codes[axis] = codes
        columns[f"{axis}_residual"] = _residual_column(residual, compared, window)
        columns[f"{axis}_level"] = level_labels(codes)
    shares = None
    if MACHINE_CHANNEL in rules:
        rule = rules[MACHINE_CHANNEL]
        centers = [rules[axis].center for axis in axes]
        scales = [rules[axis].scale for axis in axes]
        shares = MachineShares([c[window] for c in compared_all], centers, scales)
        if machine_scores is None:
            score = ssr_score(compared_all, centers, scales)  # NaN where every axis is idle
            np.copyto(score, np.nan, where=~active_any)
        else:
            score = np.where(active_any, np.asarray(machine_scores, dtype=np.float64), np.nan)
        codes = assign_levels(
            score,
            score,
            minc=rule.min_c,
            maxc=rule.max_c,
            t_long=rule.t_long,
            t_short=rule.t_short,
            active=np.isfinite(score),
        )[window]
        codes.flags.writeable = False
        level_codes[MACHINE_CHANNEL] = codes
        columns["machine_score"] = score[window]  # a fresh array of our own
        columns["machine_level"] = level_labels(codes)
    worst = level_codes[axes[0]].copy()
    for codes in level_codes.values():
        np.maximum(worst, codes, out=worst)
    worst.flags.writeable = False
    columns["level"] = level_labels(worst)
    # The columns above are fresh arrays owned by this frame alone or columns it shares with the
    # input through copy-on-write, so they need no second copy (and no consolidation into one
    # block, which costs more than the scoring itself).
    out = pd.DataFrame(columns, copy=False)
    logger.debug(
        "scored %d channels on %d rows, kept %d window rows (%d before, %d after)",
        len(level_codes),
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
        values=values_out,
        raw_residuals=raw_out,
        shares=shares,
        sensor_steps=sensor_steps,
    )


def _residual_column(column: pd.Series, compared: np.ndarray, window: slice) -> Any:
    """The window rows of an axis's compared residuals for the output frame, copied only if needed.

    Smoothed residuals, and residuals converted to float64, are arrays of our own. Unsmoothed
    float64 ones are the caller's column, which the output shares through pandas' copy-on-write:
    a change to either frame then copies instead of reaching the other.
    """
    if column.dtype == np.float64 and np.may_share_memory(compared, column.array):
        return column.iloc[window].reset_index(drop=True)
    return compared[window]


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
