"""Sensor health of a window: one grade per axis (``high``/``medium``/``low``) with reasons.

Each check looks at one way a sensor goes wrong and, when it finds it, gives a grade, a reason
(what, how much) and the recommended action. An axis's grade is the worst of its findings;
``high`` when none. The checks (parameters in :class:`HealthPolicy`, config ``health``):

==============  ===========================================================================
missing         share of NaN samples above ``missing_medium`` (medium) / ``missing_low`` (low)
flat            the same non-zero value for more than ``flat_steps`` consecutive samples
                (a stuck or frozen sensor; zeros are the machine at rest): low
gaps            stretches without a reading of the axis (NaN, or no row at all) longer than
                ``gap_factor`` x dt cover more than ``gaps_share`` of the window: medium
dt change       the median sampling interval of the window's second half differs from its first
                half's by more than ``dt_change`` (a share): medium, every axis
monotonic       at least ``monotonic_share`` of the changes between active samples go one way
                (a counter, not a reading): low
several modes   the histogram of the active values has separate humps, each with at least
                ``mode_share`` of the samples, with an empty stretch between them (bins of
                at most ``mode_gap`` of the highest bin): medium
==============  ===========================================================================

Scoring adds ``out of range`` (:func:`count_out_of_range`, :func:`out_of_range`): more than
``out_of_range_share`` of the scored samples outside the training range: medium.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from frames import float_column

__all__ = [
    "GRADES",
    "AxisHealth",
    "Finding",
    "HealthPolicy",
    "ScoredHealth",
    "UnhealthySensorError",
    "count_out_of_range",
    "epoch_seconds",
    "grade_axes",
    "out_of_range",
]

GRADES = ("high", "medium", "low")
"""Grades from best to worst."""


class UnhealthySensorError(ValueError):
    """Training refuses an axis graded low (``health.on_low: refuse``): status ``unhealthy``."""


class HealthPolicy(BaseModel):
    """Parameters of the sensor health checks (config ``health``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Grade every axis's health at training and profile.")
    on_low: Literal["refuse", "skip", "warn"] = Field(
        "refuse",
        description=(
            "An axis graded low at training: refuse stops the run (nothing registered), skip "
            "leaves the axis out of the version (score with data.axes without it), warn only "
            "logs it."
        ),
    )
    missing_medium: float = Field(
        0.05, ge=0, le=1, description="Share of missing (NaN) samples graded medium."
    )
    missing_low: float = Field(
        0.5, ge=0, le=1, description="Share of missing (NaN) samples graded low."
    )
    flat_steps: int = Field(
        300,
        ge=2,
        description=(
            "The same non-zero value for more than this many consecutive samples is a flat "
            "(stuck) sensor: low."
        ),
    )
    gap_factor: float = Field(
        5.0, gt=1, description="A stretch without a reading longer than this many dt is a gap."
    )
    gaps_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Gaps covering more than this share of the window's time: medium.",
    )
    dt_change: float = Field(
        0.2,
        gt=0,
        description=(
            "Median sampling interval of the second half of the window (or of a scored window "
            "against training) off by more than this share: medium."
        ),
    )
    monotonic_share: float = Field(
        0.99,
        gt=0.5,
        le=1,
        description="At least this share of the changes going one way is a counter: low.",
    )
    mode_gap: float = Field(
        0.002,
        ge=0,
        lt=1,
        description=(
            "Separate modes: humps of the 64-bin histogram of active values divided by bins of "
            "at most this share of the highest bin (0 = only empty bins divide)."
        ),
    )
    mode_share: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Separate modes count only when each holds at least this share of samples.",
    )
    out_of_range_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Scoring: a share of samples outside the training range above this: medium.",
    )


@dataclass(frozen=True)
class Finding:
    """One check's result: ``check`` (``missing``, ``flat``, ...), its grade, why, what to do."""

    check: str
    grade: str
    reason: str
    action: str


@dataclass(frozen=True)
class AxisHealth:
    """An axis's grade (worst finding; ``high`` without any) and its findings."""

    grade: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def reasons(self) -> list[str]:
        return [f"{f.check}: {f.reason}" for f in self.findings]

    def to_dict(self) -> dict[str, object]:
        return {"grade": self.grade, "findings": [asdict(f) for f in self.findings]}


def _worst(findings: list[Finding]) -> str:
    return max((f.grade for f in findings), key=GRADES.index, default="high")


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """A ``ts`` column (UTC datetimes, naive = UTC, or float epoch seconds) as float seconds."""
    if getattr(ts.dtype, "unit", None) == "ns" and pd.api.types.is_datetime64_any_dtype(ts):
        # Aware nanoseconds already (the extraction's contract): the int64 instants as they
        # are. A naive column has no ``unit`` on its NumPy dtype and takes the path below.
        return ts.array.asi8 / 1e9
    if pd.api.types.is_datetime64_any_dtype(ts):
        stamps = pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]")
        return stamps.to_numpy("datetime64[ns]").view("int64") / 1e9
    return ts.to_numpy(dtype=np.float64)


_BLOCK_ROWS = 1 << 15
"""Rows per block of the per-axis scans: their scratch masks stay in the CPU cache, instead of
a handful of full-length temporaries per axis (each one new memory to touch)."""


def _utc_nanoseconds(ts: pd.Series) -> np.ndarray:
    """The UTC instants of a time zone aware ``datetime64[ns]`` column as int64, read-only,
    without a copy (what ``ts.dt.tz_convert(None).to_numpy()`` holds, without building it)."""
    values = ts.array.asi8.view()
    values.flags.writeable = False
    return values


def ticks(ts: pd.Series) -> tuple[np.ndarray, float]:
    """Sample times as exact int64 nanoseconds (datetimes) or float seconds (epoch), and the
    number of those units per second; ``ticks / per_second`` equals :func:`epoch_seconds`.
    No copy for ``datetime64[ns]`` columns."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        return ts.to_numpy(dtype="float64"), 1.0
    if isinstance(ts.dtype, pd.DatetimeTZDtype) and ts.dtype.unit == "ns":
        return _utc_nanoseconds(ts), 1e9
    naive = ts.dt.tz_convert(None) if getattr(ts.dtype, "tz", None) is not None else ts
    values = naive.to_numpy()
    if np.datetime_data(values.dtype)[0] != "ns":
        values = values.astype("datetime64[ns]")
    return values.view("int64"), 1e9


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and lengths of the runs of True in ``mask``."""
    return _block_runs(mask.size, lambda lo, hi: mask[lo:hi])


class _Runs:
    """Runs of True of a mask given block by block, in order; a run crossing blocks is one."""

    def __init__(self) -> None:
        self._starts: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []

    def add(self, lo: int, mask: np.ndarray) -> None:
        """The mask's positions ``lo`` to ``lo + mask.size``."""
        at = np.flatnonzero(mask)
        if not at.size:
            return
        cut = np.flatnonzero(np.diff(at) != 1) + 1
        first = at[np.concatenate(([0], cut))] + lo  # not np.r_: ~10 µs a call
        last = at[np.concatenate((cut - 1, [at.size - 1]))] + lo + 1
        starts, ends = self._starts, self._ends
        if ends and ends[-1][-1] == first[0]:  # the previous block's last run goes on
            first[0] = starts[-1][-1]
            starts[-1], ends[-1] = starts[-1][:-1], ends[-1][:-1]
        starts.append(first)
        ends.append(last)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Start positions and lengths of the runs."""
        if not self._starts:
            return np.empty(0, np.intp), np.empty(0, np.intp)
        begin = np.concatenate(self._starts)
        return begin, np.concatenate(self._ends) - begin


def _block_runs(
    size: int, mask_of: Callable[[int, int], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and lengths of the runs of True of a mask of ``size`` positions given
    block by block (``mask_of(lo, hi)``: positions ``lo`` to ``hi``); a run crossing blocks
    is one run."""
    runs = _Runs()
    for lo in range(0, size, _BLOCK_ROWS):
        runs.add(lo, mask_of(lo, min(lo + _BLOCK_ROWS, size)))
    return runs.result()


def _repeats(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Positions ``lo`` to ``hi`` of the mask "sample k + 1 repeats sample k, and is not 0"."""
    block = values[lo : hi + 1]
    later = block[1:]
    return (later == block[:-1]) & ((later > 0) | (later < 0))


_SAMPLED_ROWS = 1_000_000
"""Rows the distribution checks (counter, modes) look at, evenly spaced: a counter rises in
every stride and a mode's share is the same, at a tenth of the cost on a 10 M-row window."""


@dataclass(frozen=True)
class _Scan:
    """What one pass over an axis's values finds (see :func:`_scan`)."""

    missing: tuple[np.ndarray, np.ndarray]
    """Starts and lengths of the runs of NaN samples."""
    repeats: tuple[np.ndarray, np.ndarray]
    """Starts and lengths of the runs of a repeated non-zero value (see :func:`_longest_flat`)."""
    active: np.ndarray
    """The non-zero readings (idle zeros and NaN left out) among the rows the distribution
    checks look at (every ``ceil(size / _SAMPLED_ROWS)``-th), in order."""


def _scan(values: np.ndarray) -> _Scan:
    """The NaN runs, the repeated-value runs and the sampled active readings of an axis, in
    one blocked pass: each block is read once while it is in the CPU cache."""
    size = values.size
    stride = 1 if size <= _SAMPLED_ROWS else -(-size // _SAMPLED_ROWS)  # rows 0, stride, ...
    missing, repeats = _Runs(), _Runs()
    active: list[np.ndarray] = []
    for lo in range(0, size, _BLOCK_ROWS):
        hi = min(lo + _BLOCK_ROWS, size)
        block = values[lo:hi]
        missing.add(lo, np.isnan(block))
        repeats.add(lo, _repeats(values, lo, min(hi, size - 1)))
        sampled = block[(-lo) % stride :: stride]
        active.append(sampled[(sampled > 0) | (sampled < 0)])
    picked = np.concatenate(active) if active else values[:0]
    return _Scan(missing.result(), repeats.result(), picked)


def _missing_finding(missing: int, size: int, policy: HealthPolicy) -> Finding | None:
    share = float(missing) / max(size, 1)
    if share <= policy.missing_medium:
        return None
    grade = "low" if share > policy.missing_low else "medium"
    return Finding(
        "missing",
        grade,
        f"{share:.1%} of the samples are missing (NaN)",
        "check the sensor and its logging; short gaps can be filled with prep.interpolate: true",
    )


def _longest_flat(values: np.ndarray) -> tuple[int, float]:
    """The longest run of one repeated non-zero value (samples) and that value (0, nan: none).

    Zeros are the machine at rest, not a frozen reading.
    """
    size = max(values.size - 1, 0)
    return _longest_of(values, _block_runs(size, lambda lo, hi: _repeats(values, lo, hi)))


def _longest_of(values: np.ndarray, repeats: tuple[np.ndarray, np.ndarray]) -> tuple[int, float]:
    """:func:`_longest_flat` from the runs of repeats."""
    starts, lengths = repeats
    if not lengths.size:
        return 0, float("nan")
    at = int(np.argmax(lengths))
    return int(lengths[at]) + 1, float(values[starts[at]])  # n repeats: n + 1 equal samples


def _run_length(values: np.ndarray, value: float) -> int:
    """Samples at the start of ``values`` equal to ``value`` (0 for 0 or NaN: a machine at rest
    or a missing reading is no frozen one; as :func:`_longest_flat` counts)."""
    if value == 0 or np.isnan(value):
        return 0
    # Block by block from the start: a run usually ends long before the window does.
    for lo in range(0, values.size, _BLOCK_ROWS):
        differs = values[lo : lo + _BLOCK_ROWS] != value
        if differs.any():
            return lo + int(np.argmax(differs))
    return int(values.size)


def _flat_finding(
    longest: int, value: float, dt_seconds: float, policy: HealthPolicy
) -> Finding | None:
    if longest <= policy.flat_steps:
        return None
    return Finding(
        "flat",
        "low",
        f"the value {value:g} repeats for {longest} samples (~{longest * dt_seconds / 60:.0f}"
        f" min, more than health.flat_steps {policy.flat_steps}): a stuck or frozen sensor",
        "check the sensor and its transmitter; label the stretch or train on a window without it",
    )


@dataclass(frozen=True)
class WindowTimes:
    """The window's times, worked out once for the checks of every axis."""

    ticks: np.ndarray
    per_second: float
    span: float
    """Seconds from the first sample to the last (0 with fewer than 2)."""
    threshold: float
    """``gap_factor`` x dt: a silence longer than this is a gap."""
    long_at: np.ndarray
    """Positions k whose interval to sample k + 1 is longer than ``threshold``..."""
    long_seconds: np.ndarray
    """... and those intervals, in seconds."""
    dt_change: Finding | None

    def seconds(self, rows: np.ndarray) -> np.ndarray:
        """Epoch seconds of the samples at ``rows``."""
        return self.ticks[rows] / self.per_second


def window_times(
    ticks: np.ndarray,
    per_second: float,
    dt_seconds: float,
    policy: HealthPolicy,
    scratch: np.ndarray | None = None,
) -> WindowTimes:
    """The window's intervals in seconds (into ``scratch``, 8 bytes per interval, when given;
    it is overwritten), its long ones, and its dt change, block by block."""
    size = ticks.size
    n = max(size - 1, 0)
    intervals = np.empty(n) if scratch is None else scratch[:n].view(np.float64)
    threshold = policy.gap_factor * dt_seconds
    at: list[np.ndarray] = []
    for lo in range(0, n, _BLOCK_ROWS):
        hi = min(lo + _BLOCK_ROWS, n)
        seconds = ticks[lo : hi + 1] / per_second
        block = np.subtract(seconds[1:], seconds[:-1], out=intervals[lo:hi])
        at.append(np.flatnonzero(block > threshold) + lo)
    long_at = np.concatenate(at) if at else np.empty(0, np.intp)
    long_seconds = intervals[long_at]
    span = float(ticks[-1] / per_second - ticks[0] / per_second) if size > 1 else 0.0
    return WindowTimes(
        ticks, per_second, span, threshold, long_at, long_seconds, _dt_change(intervals, policy)
    )


def _gaps_finding(
    missing_starts: np.ndarray,
    missing_lengths: np.ndarray,
    window: WindowTimes,
    policy: HealthPolicy,
) -> Finding | None:
    """Time without a reading: NaN stretches of the axis and missing rows, beyond k x dt.

    A silence is an interval between consecutive readings (and from the window's first
    sample to the first reading, from the last reading to its last sample): the window's own
    intervals between two readings, and one interval across each run of NaN samples.
    """
    if window.span <= 0:
        return None
    size = window.ticks.size
    if missing_lengths.size:
        if size - int(missing_lengths.sum()) < 2:
            return None  # the missing check speaks for an axis without readings
        before = missing_starts - 1  # the reading before each NaN run (-1: none)
        after = missing_starts + missing_lengths  # the reading after it (size: none)
        across = window.seconds(np.minimum(after, size - 1)) - window.seconds(np.maximum(before, 0))
        crossing = across > window.threshold
        # The window's long intervals next to a NaN sample are part of a run's silence.
        run = np.searchsorted(before, window.long_at, side="right") - 1
        clear = (run < 0) | (window.long_at >= after[np.maximum(run, 0)])
        order = np.argsort(np.r_[window.long_at[clear], before[crossing]], kind="stable")
        long = np.r_[window.long_seconds[clear], across[crossing]][order]
    else:  # every reading there: the gaps are the rows missing in time
        long = window.long_seconds
    share = float(long.sum()) / window.span
    if share <= policy.gaps_share:
        return None
    return Finding(
        "gaps",
        "medium",
        f"{long.size} gaps longer than {policy.gap_factor:g} x dt cover {share:.1%} of the window",
        "check the data logger's buffer and network; the gaps' edges are scored as they come",
    )


def _dt_change(intervals: np.ndarray, policy: HealthPolicy) -> Finding | None:
    """The median interval of the window's second half against its first half's; selects in
    place, so ``intervals`` ends up reordered within each half."""
    if intervals.size < 7:
        return None
    half = (intervals.size + 1) // 2
    first = float(np.median(intervals[:half], overwrite_input=True))
    second = float(np.median(intervals[half:], overwrite_input=True))
    if first <= 0 or abs(second / first - 1.0) <= policy.dt_change:
        return None
    return Finding(
        "dt change",
        "medium",
        f"the sampling interval changed from {first:.6g} s to {second:.6g} s within the window",
        "train on a window with one sampling interval (thresholds count samples)",
    )


def _monotonic(active: np.ndarray, policy: HealthPolicy) -> Finding | None:
    steps = np.diff(active)
    changes = np.count_nonzero(steps)  # the steps that are not 0
    if changes < 20:
        return None
    rising = float(np.count_nonzero(steps > 0)) / changes
    share = max(rising, 1.0 - rising)
    if share < policy.monotonic_share:
        return None
    way = "rise" if rising >= 0.5 else "fall"
    return Finding(
        "monotonic",
        "low",
        f"{share:.1%} of its changes {way}: a counter, not a reading",
        "model its rate (the difference per sample) or leave it out of data.axes",
    )


_MODE_GAP_BINS = 4
"""Empty bins (of 64) that must divide two modes: a sixteenth of the value range."""


def _merge_runs(
    starts: np.ndarray, lengths: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Join each run not marked ``new`` to the run before it."""
    first = starts[new]
    last = np.maximum.reduceat(starts + lengths, np.flatnonzero(new)) if starts.size else starts
    return first, last - first


_MODE_BINS = 64
"""Bins of the modes check's histogram of the active values."""


def _histogram(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(values, bins=_MODE_BINS, range=(low, high))`` of finite ``values`` whose
    minimum and maximum are ``low`` < ``high``: the same bins and counts, bit for bit (NumPy's
    uniform-bin path: a scaled index, corrected by one against the edges), without its range
    checks, range mask and blocks (~40 % of its time on a window of 10,000 samples)."""
    if high - low < 1e-290:  # near the subnormals, edges may coincide: NumPy's own checks
        return np.histogram(values, bins=_MODE_BINS, range=(low, high))
    edges = np.linspace(low, high, _MODE_BINS + 1)
    # Every value lies in [low, high]: its index is 0..64, and 64 only for ``high`` itself.
    index = np.subtract(values, low)
    index /= np.subtract(high, low)
    index *= _MODE_BINS
    bins = index.astype(np.intp)
    np.minimum(bins, _MODE_BINS - 1, out=bins)  # the last bin holds its right edge
    # Corrections are rare (a value within an ulp of an edge): index only where one is due.
    down = values < edges.take(bins)
    if down.any():
        bins[down] -= 1
    # The last bin has no upper neighbour: its upper edge is +inf here, which no value reaches.
    up = values >= np.append(edges[1:-1], np.inf).take(bins)
    if up.any():
        bins[up] += 1
    return np.bincount(bins, minlength=_MODE_BINS), edges


def _humps(counts: list[int], size: int, policy: HealthPolicy) -> list[tuple[int, int]]:
    """First bin and bins of the separate modes of a histogram of ``size`` values.

    Humps are runs of bins above ``mode_gap`` x the highest; those divided by fewer than
    :data:`_MODE_GAP_BINS` bins are one mode seen through quantisation. A mode's mass runs up
    to the next one's first bin; it needs ``mode_share`` of the values and more than one bin
    (one-bin humps: quantised levels). A loop over the 64 bins, not array passes: a handful
    of tiny NumPy calls cost more than the loop.
    """
    floor = policy.mode_gap * max(counts)
    humps: list[list[int]] = []  # [first bin, end] of each mode
    end = None  # the end of the last run of full bins
    for at, count in enumerate(counts):
        if count <= floor:
            continue
        if end is not None and at - end < _MODE_GAP_BINS:  # the run goes on, or a narrow divide
            end = humps[-1][1] = at + 1
        else:
            humps.append([at, at + 1])
            end = at + 1
    firsts = [first for first, _ in humps]
    ends = [*firsts[1:], len(counts)]
    masses = [sum(counts[a:b]) / size for a, b in zip(firsts, ends, strict=True)]
    return [
        (first, last - first)
        for (first, last), mass in zip(humps, masses, strict=True)
        if mass >= policy.mode_share and last - first > 1
    ]


def _modes(active: np.ndarray, policy: HealthPolicy) -> Finding | None:
    if active.size < 100:
        return None
    low, high = float(active.min()), float(active.max())
    if not (math.isfinite(low) and math.isfinite(high)):  # +-inf among the readings
        active = active[np.isfinite(active)]
        if active.size < 100:
            return None
        low, high = float(active.min()), float(active.max())
    with np.errstate(over="ignore"):
        if not np.isfinite(high - low) or (high - low) <= 1e-12 * max(abs(low), abs(high)):
            return None  # one value, or a range beyond float64 (the window's checks speak)
    counts, edges = _histogram(active, low, high)
    modes = [
        f"{edges[s]:.4g}..{edges[s + n]:.4g}"
        for s, n in _humps(counts.tolist(), active.size, policy)
    ]
    if len(modes) < 2:
        return None
    return Finding(
        "several modes",
        "medium",
        f"{len(modes)} separate operating modes ({', '.join(modes[:4])})",
        "train one asset (data.asset_col) or one version per mode, or check for a unit change",
    )


def grade_axes(
    frame: pd.DataFrame, axes: list[str], dt_seconds: float, policy: HealthPolicy
) -> dict[str, AxisHealth]:
    """The health of every axis of a time-sorted window (``ts`` and one column per axis)."""
    window = window_times(*ticks(frame["ts"]), dt_seconds, policy)

    def grade(axis: str) -> AxisHealth:
        return grade_values(float_column(frame, axis), window, dt_seconds, policy)

    # NumPy releases the GIL in these passes: two axes at a time on a 10 M-row window.
    with ThreadPoolExecutor(max_workers=max(1, min(2, len(axes)))) as pool:
        return dict(zip(axes, pool.map(grade, axes), strict=True))


def grade_values(
    values: np.ndarray, window: WindowTimes, dt_seconds: float, policy: HealthPolicy
) -> AxisHealth:
    """One axis's grade and findings; ``window``: the window's times (see :func:`window_times`),
    whose dt change is the same finding for every axis."""
    # Differences of values near the float64 limit overflow: they are judged by the window's
    # own checks (prepare refuses them), not here.
    with np.errstate(over="ignore", invalid="ignore"):
        scan = _scan(values)
        starts, lengths = scan.missing
        found = [
            _missing_finding(int(lengths.sum()), values.size, policy),
            _flat_finding(*_longest_of(values, scan.repeats), dt_seconds, policy),
            _gaps_finding(starts, lengths, window, policy),
            window.dt_change,
            _monotonic(scan.active, policy),
            _modes(scan.active, policy),
        ]
    findings = [f for f in found if f is not None]
    return AxisHealth(_worst(findings), tuple(findings))


def count_out_of_range(
    values: Mapping[str, np.ndarray], ranges: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[int, int]]:
    """Scoring: per axis of ``ranges``, active samples outside the training ``[min, max]`` and
    active samples (idle zeros and NaN left out)."""
    counts: dict[str, tuple[int, int]] = {}
    for axis, (low, high) in ranges.items():
        if axis not in values:
            continue
        column = np.asarray(values[axis], dtype=np.float64)
        out = seen = 0
        for lo in range(0, column.size, _BLOCK_ROWS):  # cache-sized masks, not full-length ones
            block = column[lo : lo + _BLOCK_ROWS]
            active = (block > 0) | (block < 0)
            out += int(np.count_nonzero(active & ((block < low) | (block > high))))
            seen += int(np.count_nonzero(active))
        counts[axis] = (out, seen)
    return counts


def out_of_range(
    counts: Mapping[str, tuple[int, int]],
    ranges: Mapping[str, tuple[float, float]],
    policy: HealthPolicy,
) -> dict[str, Finding]:
    """Axes whose share of scored samples outside the training range (``counts`` from
    :func:`count_out_of_range`, summed over a run's windows) exceeds ``out_of_range_share``."""
    found: dict[str, Finding] = {}
    for axis, (outside, active) in counts.items():
        share = outside / active if active else 0.0
        if share > policy.out_of_range_share:
            low, high = ranges[axis]
            found[axis] = Finding(
                "out of range",
                "medium",
                f"{share:.1%} of the scored samples lie outside the training range "
                f"[{low:.6g}, {high:.6g}]",
                "retrain on a window that covers this operation, or check the sensor",
            )
    return found


class ScoredHealth:
    """Sensor health of a score run's samples, gathered window by window (in time order).

    Per axis: ``flat`` (the longest run of one repeated non-zero value; a run that goes on from
    one window into the next, e.g. the chunks of a long run, is joined when the next window
    starts within two sampling intervals of the last one's end), ``out of range`` (against the
    training ``ranges``); for every axis: ``dt change`` (the windows' median interval against
    the training ``dt_seconds``). Checks whose inputs are missing are skipped.

    Args:
        policy: the ``health`` config.
        ranges: axis → the training window's [min, max].
        dt_seconds: the training window's median sampling interval (None: not judged).
    """

    def __init__(
        self,
        policy: HealthPolicy,
        ranges: Mapping[str, tuple[float, float]],
        dt_seconds: float | None,
    ) -> None:
        self.policy = policy
        self.ranges = dict(ranges)
        self.dt_seconds = dt_seconds
        self._outside: dict[str, tuple[int, int]] = {}
        self._flat: dict[str, tuple[int, float]] = {}
        self._tail: dict[str, tuple[int, float]] = {}  # the run the last window ended with
        self._last_second: float | None = None  # the last window's newest sample
        self._intervals: list[float] = []

    def add(self, seconds: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Add one scored window (``seconds``: epoch seconds; ``values``: axis → value)."""
        if len(seconds) > 1:
            # The differences are our own: the median may reorder them instead of a copy.
            self._intervals.append(float(np.median(np.diff(seconds), overwrite_input=True)))
        for axis, (out, seen) in count_out_of_range(values, self.ranges).items():
            before = self._outside.get(axis, (0, 0))
            self._outside[axis] = (before[0] + out, before[1] + seen)
        seconds = np.asarray(seconds, dtype=np.float64)
        step = self.dt_seconds or (float(np.median(self._intervals)) if self._intervals else 0.0)
        joins = (
            self._last_second is not None
            and seconds.size > 0
            and seconds[0] - self._last_second <= 2.0 * step
        )
        for axis, column in values.items():
            column = np.asarray(column, dtype=np.float64)
            longest = _longest_flat(column)
            if column.size:
                own = _run_length(column, column[0])
                tail = self._tail.get(axis, (0, float("nan"))) if joins else (0, float("nan"))
                lead = own + tail[0] if own and column[0] == tail[1] else own
                if lead > longest[0]:  # the last window's run goes on
                    longest = (lead, float(column[0]))
                trail = lead if own == column.size else _run_length(column[::-1], column[-1])
                self._tail[axis] = (trail, float(column[-1]))
            if longest[0] > self._flat.get(axis, (0, 0.0))[0]:
                self._flat[axis] = longest
        if seconds.size:
            self._last_second = float(seconds[-1])

    def findings(self) -> dict[str, AxisHealth]:
        """Axis → its grade and findings, for the axes with any."""
        shared = None
        if self.dt_seconds and self._intervals:
            seen = float(np.median(self._intervals))
            if abs(seen / self.dt_seconds - 1.0) > self.policy.dt_change:
                shared = Finding(
                    "dt change",
                    "medium",
                    f"the sampling interval is {seen:.6g} s, the version was trained on "
                    f"{self.dt_seconds:.6g} s",
                    "retrain on data with the current sampling interval (thresholds count samples)",
                )
        ranged = out_of_range(self._outside, self.ranges, self.policy)
        step = self.dt_seconds or (float(np.median(self._intervals)) if self._intervals else 0.0)
        flat = {a: _flat_finding(*run, step, self.policy) for a, run in self._flat.items()}
        axes = [*self.ranges, *(a for a in self._flat if a not in self.ranges)]
        out: dict[str, AxisHealth] = {}
        for axis in axes:
            found = [f for f in (flat.get(axis), ranged.get(axis), shared) if f is not None]
            if found:
                out[axis] = AxisHealth(_worst(found), tuple(found))
        return out
