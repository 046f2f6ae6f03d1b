"""The synthetic robot behind the embedded demo database, with labelled anomalies.

An 8-axis robot repeats one motion program (a ~60 s cycle whose speed wanders slightly), so
its joint currents are correlated: each axis is its base current times a mix of three motion
components, plus a slow daily temperature effect and 3 % sensor noise. Sampling is ~1.891 s
with millisecond jitter. The robot stops now and then (every axis exactly 0), and axis6 drops
a reading at times (NaN).

Anomalies of six kinds are injected, and their windows are the labels (``start_ts``,
``end_ts``, ``axis`` — empty when several axes are hit — ``kind``, ``severity``):

==============  ============================================================================
spike           2-3 samples of ±10 σ on one axis
drop            one axis loses 60 % of its current for ~4 minutes
offset          one axis +6 σ for 5-15 minutes
stuck           one axis repeats its last reading for 30-45 minutes
degradation     one axis creeps up by 25 % of its base over 5.5 hours
shift           three axes move together by 8 % of their base for ~10 minutes
==============  ============================================================================

One more change is not labelled, because no alarm is due for it yet: **wear** — from 80 % of
the data to its end (~34 hours of the default size, the part the shipped config scores),
axis8 creeps up linearly by up to 1 noise σ (3 % of its base current) at the last sample,
while the robot runs. It stays below the alert thresholds and is too slow for the drift
charts within that day and a half; the score run's time-to-threshold projection says when it
would reach its error threshold (issue 13's demo).

Four of them fall in the first 80 % of the data (the training window of the shipped config,
so masking them can be tried), the other :data:`SCORED_ANOMALIES` in the last 20 %.
Same ``rows`` → identical data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_ROWS",
    "DEMO_AXES",
    "DEMO_START",
    "LABEL_COLUMNS",
    "SCORED_ANOMALIES",
    "TRAIN_SHARE",
    "DemoData",
    "demo_data",
]

DEMO_AXES = tuple(f"axis{k}" for k in range(1, 9))
DEMO_START = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
DEFAULT_ROWS = 320_000
"""About 7 days at 1.891 s."""
TRAIN_SHARE = 0.8
"""The shipped config trains on the first 80 % (``data.train_end``) and scores the rest."""
LABEL_COLUMNS = ("start_ts", "end_ts", "axis", "kind", "severity")

_SEED = 20260105
_STEP_MS = 1891
_BASE_CURRENT = np.array([4.0, 9.0, 6.5, 3.0, 2.0, 1.5, 1.2, 0.8])  # amperes, axis1..axis8
_NOISE = 0.03  # sensor noise, share of the base current
_CYCLE_SECONDS = 60.0
# How strongly each axis follows the three motion components (rows: axes).
_MIXING = np.array(
    [
        [0.30, 0.05, 0.00],
        [0.25, 0.15, 0.05],
        [0.05, 0.30, 0.10],
        [0.00, 0.20, 0.25],
        [0.15, 0.00, 0.30],
        [0.10, 0.25, 0.00],
        [0.20, 0.00, 0.20],
        [0.05, 0.10, 0.30],
    ]
)
# Machine stops (start fraction, minutes): every axis exactly 0.
_IDLE = ((0.11, 40), (0.29, 25), (0.47, 60), (0.66, 30), (0.78, 20), (0.905, 35))
# (kind, start fraction, axis index or None, severity). Durations and sizes: see the docstring.
_ANOMALIES = (
    ("spike", 0.08, 3, "alert"),
    ("offset", 0.22, 6, "alert"),
    ("drop", 0.41, 1, "error"),
    ("shift", 0.60, None, "alert"),
    ("spike", 0.812, 0, "alert"),
    ("offset", 0.818, 2, "alert"),
    ("drop", 0.826, 5, "error"),
    ("shift", 0.834, None, "alert"),
    ("spike", 0.841, 7, "alert"),
    ("stuck", 0.848, 4, "error"),
    ("offset", 0.858, 0, "alert"),
    ("spike", 0.864, 2, "alert"),
    ("drop", 0.871, 3, "error"),
    ("degradation", 0.869, 2, "alert"),
    ("spike", 0.884, 5, "alert"),
    ("offset", 0.891, 7, "alert"),
    ("shift", 0.898, None, "alert"),
    ("spike", 0.916, 1, "alert"),
    ("drop", 0.923, 6, "error"),
    ("offset", 0.931, 4, "alert"),
    ("stuck", 0.939, 1, "error"),
    ("spike", 0.951, 6, "alert"),
    ("shift", 0.958, None, "alert"),
    ("drop", 0.966, 0, "error"),
    ("offset", 0.974, 5, "alert"),
    ("spike", 0.983, 4, "alert"),
)
SCORED_ANOMALIES = sum(1 for _, start, _, _ in _ANOMALIES if start >= TRAIN_SHARE)
# Minutes each kind lasts, before scaling to short demo databases.
_MINUTES = {"drop": 4.0, "offset": 10.0, "stuck": 40.0, "degradation": 330.0, "shift": 10.0}
_SHIFT_AXES = (1, 2, 4)
# The unlabelled wear: (start fraction, axis index, rise at the last sample in noise sigma).
_WEAR = (0.80, 7, 1.0)


@dataclass(frozen=True)
class DemoData:
    """The synthetic samples (WIDE, ``ts`` + ``axis1..axis8``) and the labelled anomalies."""

    samples: pd.DataFrame
    labels: pd.DataFrame


def _motion(phase: np.ndarray) -> np.ndarray:
    """Three smooth periodic motion components of the program (rows × 3), each in [-1, 1]."""
    angle = 2 * np.pi * phase
    return np.column_stack(
        [
            np.sin(angle) + 0.3 * np.sin(3 * angle),
            np.cos(angle + 0.7) * np.sin(2 * angle),
            np.sign(np.sin(angle - 1.2)) * np.abs(np.sin(angle - 1.2)) ** 0.5,
        ]
    ) / np.array([1.3, 1.0, 1.0])


def demo_data(
    rows: int = DEFAULT_ROWS,
    *,
    seed: int = _SEED,
    start: pd.Timestamp = DEMO_START,
    base_scale: float = 1.0,
    anomalies: bool = True,
) -> DemoData:
    """Generate the deterministic demo dataset (same arguments → identical data).

    Args:
        rows: samples.
        seed: of the noise, jitter and motion (another seed: another robot of the same kind).
        start: time of the first sample.
        base_scale: factor on every axis's base current (a bigger or smaller robot).
        anomalies: inject the anomalies of the module docstring (their windows are the labels).

    Raises:
        ValueError: ``rows`` is below 1000 (too short for idle stretches and anomalies).
    """
    if rows < 1000:
        raise ValueError(f"the demo database needs at least 1000 rows, got {rows}")
    rng = np.random.default_rng(seed)
    base_current = _BASE_CURRENT * base_scale
    # Most intervals are the logger's nominal 1891 ms; the rest jitter by up to 40 ms, so the
    # median interval is exactly 1.891 s for any length, as on the real robot.
    jitter = rng.integers(-40, 41, size=rows - 1)
    step_ms = _STEP_MS + np.where(rng.random(rows - 1) < 0.6, 0, jitter)
    offsets_ms = np.concatenate(([0], np.cumsum(step_ms)))
    ts = start + pd.to_timedelta(offsets_ms, unit="ms")
    seconds = offsets_ms / 1000.0
    # The program's speed wanders by a few per cent, so cycles do not line up with the clock.
    speed = 1.0 + 0.03 * np.tanh(np.cumsum(rng.normal(0.0, 0.01, rows)))
    phase = np.cumsum(np.concatenate(([0.0], np.diff(seconds))) * speed) / _CYCLE_SECONDS
    temperature = 0.02 * np.sin(2 * np.pi * seconds / 86_400.0)
    values = base_current * (1.0 + temperature[:, None] + _motion(phase) @ _MIXING.T)
    values += rng.normal(0.0, _NOISE, size=values.shape) * base_current

    scale = min(1.0, rows / DEFAULT_ROWS)
    dt_minutes = _STEP_MS / 60_000.0
    for start_fraction, minutes in _IDLE:
        first = int(start_fraction * rows)
        values[first : first + max(2, int(minutes * scale / dt_minutes)), :] = 0.0

    labels = []
    for kind, start_fraction, axis, severity in _ANOMALIES if anomalies else ():
        first = int(start_fraction * rows)
        if kind == "spike":
            length = 2 + (first % 2)
        else:
            length = max(3, int(_MINUTES[kind] * scale / dt_minutes))
        stop = min(first + length, rows)
        hit = slice(first, stop)
        if kind == "spike":
            sign = 1.0 if first % 3 else -1.0
            values[hit, axis] += sign * 10 * _NOISE * base_current[axis]
        elif kind == "drop":
            values[hit, axis] *= 0.4
        elif kind == "offset":
            values[hit, axis] += 6 * _NOISE * base_current[axis]
        elif kind == "stuck":
            values[hit, axis] = values[first - 1, axis]
        elif kind == "degradation":
            ramp = np.linspace(0.0, 0.25, stop - first)
            values[hit, axis] += ramp * base_current[axis]
        else:  # shift
            for shifted in _SHIFT_AXES:
                values[hit, shifted] += 0.08 * base_current[shifted]
        labels.append(
            {
                "start_ts": ts[first],
                "end_ts": ts[stop - 1],
                "axis": None if axis is None else DEMO_AXES[axis],
                "kind": kind,
                "severity": severity,
            }
        )
    if anomalies:
        start_fraction, axis, sigmas = _WEAR
        first = int(start_fraction * rows)
        ramp = np.linspace(0.0, sigmas * _NOISE * base_current[axis], rows - first)
        running = values[first:, axis] != 0.0  # a stopped robot stays at exactly 0
        values[first:, axis] += np.where(running, ramp, 0.0)
    missing = rng.choice(rows, size=max(1, rows // 5000), replace=False)
    values[missing, 5] = np.nan  # a few dropped readings on axis6

    samples = pd.DataFrame(np.round(values, 4), columns=list(DEMO_AXES))
    samples.insert(0, "ts", ts)
    return DemoData(samples=samples, labels=pd.DataFrame(labels, columns=list(LABEL_COLUMNS)))
