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

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

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
    if pd.api.types.is_datetime64_any_dtype(ts):
        stamps = pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]")
        return stamps.to_numpy("datetime64[ns]").view("int64") / 1e9
    return ts.to_numpy(dtype=np.float64)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and lengths of the runs of True in ``mask``."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


def _missing(values: np.ndarray, policy: HealthPolicy) -> Finding | None:
    share = float(np.count_nonzero(np.isnan(values))) / max(values.size, 1)
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
    same = (values[1:] == values[:-1]) & ((values[1:] > 0) | (values[1:] < 0))
    starts, lengths = _runs(same)
    if not lengths.size:
        return 0, float("nan")
    at = int(np.argmax(lengths))
    return int(lengths[at]) + 1, float(values[starts[at]])  # n repeats: n + 1 equal samples


def _run_length(values: np.ndarray, value: float) -> int:
    """Samples at the start of ``values`` equal to ``value`` (0 for 0, NaN or ±inf: a machine
    at rest or a missing reading is no frozen one)."""
    if value == 0 or not np.isfinite(value):
        return 0
    differs = values != value
    return int(np.argmax(differs)) if differs.any() else int(values.size)


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


def _flat(values: np.ndarray, dt_seconds: float, policy: HealthPolicy) -> Finding | None:
    return _flat_finding(*_longest_flat(values), dt_seconds, policy)


def _gaps(
    values: np.ndarray, seconds: np.ndarray, dt_seconds: float, policy: HealthPolicy
) -> Finding | None:
    """Time without a reading: NaN stretches of the axis and missing rows, beyond k x dt."""
    span = float(seconds[-1] - seconds[0]) if seconds.size > 1 else 0.0
    if span <= 0:
        return None
    missing = np.isnan(values)
    if missing.any():
        present = seconds[~missing]
        if present.size < 2:
            return None  # the missing check speaks for an axis without readings
        silent = np.diff(np.r_[seconds[0], present, seconds[-1]])
    else:  # every reading there: the gaps are the rows missing in time (no copy)
        silent = np.diff(seconds)
    long = silent[silent > policy.gap_factor * dt_seconds]
    share = float(long.sum()) / span
    if share <= policy.gaps_share:
        return None
    return Finding(
        "gaps",
        "medium",
        f"{long.size} gaps longer than {policy.gap_factor:g} x dt cover {share:.1%} of the window",
        "check the data logger's buffer and network; the gaps' edges are scored as they come",
    )


def _dt_change(seconds: np.ndarray, policy: HealthPolicy) -> Finding | None:
    if seconds.size < 8:
        return None
    half = seconds.size // 2
    first = float(np.median(np.diff(seconds[: half + 1])))
    second = float(np.median(np.diff(seconds[half:])))
    if first <= 0 or abs(second / first - 1.0) <= policy.dt_change:
        return None
    return Finding(
        "dt change",
        "medium",
        f"the sampling interval changed from {first:.6g} s to {second:.6g} s within the window",
        "train on a window with one sampling interval (thresholds count samples)",
    )


_SAMPLED_ROWS = 1_000_000
"""Rows the distribution checks (counter, modes) look at, evenly spaced: a counter rises in
every stride and a mode's share is the same, at a tenth of the cost on a 10 M-row window."""


def _sampled(values: np.ndarray) -> np.ndarray:
    if values.size <= _SAMPLED_ROWS:
        return values
    return values[:: -(-values.size // _SAMPLED_ROWS)]


def _monotonic(values: np.ndarray, policy: HealthPolicy) -> Finding | None:
    values = _sampled(values)
    active = values[(values > 0) | (values < 0)]
    steps = np.diff(active)
    steps = steps[steps != 0]
    if steps.size < 20:
        return None
    rising = float(np.count_nonzero(steps > 0)) / steps.size
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


def _modes(values: np.ndarray, policy: HealthPolicy) -> Finding | None:
    values = _sampled(values)
    active = values[((values > 0) | (values < 0)) & np.isfinite(values)]
    if active.size < 100:
        return None
    low, high = float(active.min()), float(active.max())
    with np.errstate(over="ignore"):
        if not np.isfinite(high - low) or (high - low) <= 1e-12 * max(abs(low), abs(high)):
            return None  # one value, or a range beyond float64 (the window's checks speak)
    counts, edges = np.histogram(active, bins=64, range=(low, high))
    full = counts > policy.mode_gap * counts.max()
    starts, lengths = _runs(full)
    # Humps divided by fewer than _MODE_GAP_BINS bins are one mode seen through quantisation.
    wide = np.r_[True, starts[1:] - (starts[:-1] + lengths[:-1]) >= _MODE_GAP_BINS]
    starts, lengths = _merge_runs(starts, lengths, wide)
    mass = np.add.reduceat(counts, starts) / active.size if starts.size else np.empty(0)
    keep = (mass >= policy.mode_share) & (lengths > 1)  # one-bin humps: quantised levels
    if np.count_nonzero(keep) < 2:
        return None
    modes = [
        f"{edges[s]:.4g}..{edges[s + n]:.4g}"
        for s, n in zip(starts[keep], lengths[keep], strict=True)
    ]
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
    seconds = epoch_seconds(frame["ts"])
    shared = _dt_change(seconds, policy)
    out: dict[str, AxisHealth] = {}
    # Differences of values near the float64 limit overflow: they are judged by the window's
    # own checks (prepare refuses them), not here.

    def grade(axis: str) -> AxisHealth:
        with np.errstate(over="ignore", invalid="ignore"):
            return _grade_axis(frame, axis, seconds, dt_seconds, shared, policy)

    # NumPy releases the GIL in these passes: two axes at a time on a 10 M-row window.
    with ThreadPoolExecutor(max_workers=max(1, min(2, len(axes)))) as pool:
        out.update(zip(axes, pool.map(grade, axes), strict=True))
    return out


def _grade_axis(
    frame: pd.DataFrame,
    axis: str,
    seconds: np.ndarray,
    dt_seconds: float,
    shared: Finding | None,
    policy: HealthPolicy,
) -> AxisHealth:
    """One axis's findings (``shared``: the window's dt change, the same for every axis)."""
    values = frame[axis].to_numpy(dtype=np.float64, na_value=np.nan)
    found = [
        _missing(values, policy),
        _flat(values, dt_seconds, policy),
        _gaps(values, seconds, dt_seconds, policy),
        shared,
        _monotonic(values, policy),
        _modes(values, policy),
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
        active = (column > 0) | (column < 0)
        outside = active & ((column < low) | (column > high))
        counts[axis] = (int(np.count_nonzero(outside)), int(np.count_nonzero(active)))
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
    one window into the next, e.g. the chunks of a long run, is joined), ``out of range``
    (against the
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
        self._intervals: list[float] = []

    def add(self, seconds: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Add one scored window (``seconds``: epoch seconds; ``values``: axis → value)."""
        if len(seconds) > 1:
            self._intervals.append(float(np.median(np.diff(seconds))))
        for axis, (out, seen) in count_out_of_range(values, self.ranges).items():
            before = self._outside.get(axis, (0, 0))
            self._outside[axis] = (before[0] + out, before[1] + seen)
        for axis, column in values.items():
            column = np.asarray(column, dtype=np.float64)
            longest = _longest_flat(column)
            if column.size:
                tail = self._tail.get(axis, (0, float("nan")))
                lead = _run_length(column, column[0])
                if tail[0] and column[0] == tail[1]:  # the last window's run goes on
                    lead += tail[0]
                    if lead > longest[0]:
                        longest = (lead, float(column[0]))
                trail = lead if lead >= column.size else _run_length(column[::-1], column[-1])
                self._tail[axis] = (trail, float(column[-1]))
            if longest[0] > self._flat.get(axis, (0, 0.0))[0]:
                self._flat[axis] = longest

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
