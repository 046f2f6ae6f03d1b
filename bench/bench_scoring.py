"""Benchmark of the pure scoring computation, per model family: residuals, levels, events.

Builds ``--samples`` rows x ``--axes`` axes of synthetic robot values in memory (seeded: a
repeating motion program shared by the axes, so ``cross`` and ``pca`` have something to
explain, idle stretches where every value is 0, an axis resting alone now and then, Gaussian
noise and injected sustained excursions). For every family it fits a model set on the first
``--train`` rows and calibrates the default thresholds there (both sides, pooled, machine
channel ``*`` with the ``ssr`` score), then times on all rows, with no database:

1. residuals: ``AxisModelSet.predict`` (expected value and residual of every axis, as scoring
   calls it);
2. levels: ``score_frame`` (smoothing, both sides of every axis, the machine channel's
   ``ssr`` score and its levels, dead sensors (``scoring.sensor_steps``), the worst level, the
   output frame);
3. events: ``ScoreResult.events`` with the default 300 s merge gap;
4. drift: ``DriftTracker.fold`` of every row (standardise, clip, hourly block means, CUSUM and
   EWMA of the closed blocks), with baselines fitted on the training residuals, and the sensor
   health of the scored rows (``ScoredHealth``: flat runs, out of range, dt change).

Prints one table per family and a summary of sample-axes per second against the goals (issue
11: >= 20 M for ``linear``/``constant``, >= 5 M for ``ar``, ``cross``, ``pca``).

    python bench/bench_scoring.py                      # 10,000,000 samples x 8 axes
    python bench/bench_scoring.py --samples 1000000 --repeat 5
    python bench/bench_scoring.py --families linear ar
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from DataExtractionAnalysis import HealthPolicy, ScoredHealth
from ModelTraining import AxisModelSet
from Scoring import LEVEL_NAMES, DriftConfig, score_frame
from Scoring.drift import DriftTracker, epoch_seconds, fit_drift_baselines
from Thresholding import ThresholdCalibrator, ThresholdPolicy

DT_SECONDS = 1.891
MERGE_GAP_SECONDS = 300.0
GOALS = {"constant": 20e6, "linear": 20e6, "ar": 5e6, "cross": 5e6, "pca": 5e6}
"""Sample-axes per second each family must reach (issue 11, item 8); spline has none."""
PARAMS: dict[str, dict[str, Any]] = {
    "constant": {},
    "linear": {},
    "spline": {"knots": 8},
    "ar": {"lags": 4},
    "cross": {"alpha": 0.01},
    "pca": {"components": 2},
}
"""Mid-grid settings: what selection typically picks on robot data."""
SENSOR_STEPS = 60
"""``scoring.sensor_steps`` of the shipped config.yaml: dead sensors are marked."""
STAGES = ("residuals", "levels", "events", "drift")
"""``drift`` includes the sensor health of the scored rows."""


def make_busy(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Shared running/stopped pattern: ~2,000-sample busy spells, ~200-sample stops."""
    spells = rng.geometric(np.tile([1 / 2000, 1 / 200], samples // 1000 + 2))
    busy = np.repeat(np.tile([True, False], spells.size // 2), spells)[:samples]
    return np.concatenate((busy, np.ones(samples - busy.size, dtype=bool)))


def make_frame(rng: np.random.Generator, samples: int, axes: list[str]) -> pd.DataFrame:
    """``ts``, ``time_s`` and one column per axis (see the module docstring).

    Every axis follows a 600-sample motion program with its own gain, plus noise; it is 0
    where the robot stops and, at ~2 % of the other samples, where this joint alone rests.
    One sustained excursion (2-40 samples, 1-6 noise units, either sign) per ~5,000 samples.
    """
    # Nanoseconds, as extraction delivers them.
    ts = pd.date_range("2024-01-01", periods=samples, freq=f"{DT_SECONDS}s", tz="UTC", unit="ns")
    phase = 2 * np.pi * (np.arange(samples) % 600) / 600
    program = np.sin(phase) + 0.5 * np.sin(3 * phase + 1.0)
    busy = make_busy(rng, samples)
    columns: dict[str, Any] = {"ts": ts, "time_s": np.arange(samples) * DT_SECONDS}
    for number, axis in enumerate(axes, start=1):
        values = 5.0 * number + 2.0 * (1 + number % 3) * program
        values += 0.2 * rng.standard_normal(samples)
        excursions = samples // 5000
        starts = rng.integers(0, samples, excursions)
        lengths = rng.integers(2, 40, excursions)
        heights = rng.uniform(0.2, 1.2, excursions) * rng.choice([-1.0, 1.0], excursions)
        for start, length, height in zip(starts, lengths, heights, strict=True):
            values[start : start + length] += height
        values[~(busy & (rng.random(samples) >= 0.02))] = 0.0
        columns[axis] = values
    return pd.DataFrame(columns, copy=False)  # a block per column, as extraction gives


@dataclass
class FamilyRun:
    """Timings (best of the repeats, per stage) and what the scoring found."""

    family: str
    stages: dict[str, list[float]]
    events: int
    alerts: int
    errors: int
    level_share: dict[str, float]

    @property
    def total(self) -> list[float]:
        return [sum(parts) for parts in zip(*self.stages.values(), strict=True)]


def prepare(
    frame: pd.DataFrame, axes: list[str], family: str, train_rows: int
) -> tuple[AxisModelSet, dict[str, dict[str, Any]], Any]:
    """Fit ``family`` and calibrate the default thresholds on the first ``train_rows`` rows."""
    train = frame.iloc[:train_rows]
    models = AxisModelSet(
        {axis: (family, PARAMS[family]) for axis in axes}, axes, machine="ssr"
    ).fit(train)
    residuals = {axis: models.residual(train, axis) for axis in axes}
    calibrator = ThresholdCalibrator(ThresholdPolicy()).fit(residuals, DT_SECONDS, machine="ssr")
    return models, calibrator.to_dict(), fit_drift_baselines(residuals, DriftConfig().parameters())


def run_family(
    frame: pd.DataFrame, axes: list[str], family: str, train_rows: int, repeat: int
) -> FamilyRun:
    models, thresholds, baselines = prepare(frame, axes, family, train_rows)
    train = frame.iloc[:train_rows]
    ranges = {axis: (float(train[axis].min()), float(train[axis].max())) for axis in axes}
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(repeat):
        started = time.perf_counter()
        predicted = models.predict(frame)
        after_residuals = time.perf_counter()
        result = score_frame(predicted, None, thresholds, sensor_steps=SENSOR_STEPS)
        after_levels = time.perf_counter()
        events = result.events(merge_gap_seconds=MERGE_GAP_SECONDS)
        after_events = time.perf_counter()
        tracker = DriftTracker(baselines)
        seconds = epoch_seconds(result.frame["ts"])
        tracker.fold(seconds, result.raw_residuals, result.values)
        health = ScoredHealth(HealthPolicy(), ranges, DT_SECONDS)
        health.add(seconds, result.values)
        health.findings()
        finished = time.perf_counter()
        stages["residuals"].append(after_residuals - started)
        stages["levels"].append(after_levels - after_residuals)
        stages["events"].append(after_events - after_levels)
        stages["drift"].append(finished - after_events)
        del predicted
    levels = np.bincount(result.worst_codes, minlength=len(LEVEL_NAMES))
    return FamilyRun(
        family=family,
        stages=stages,
        events=len(events),
        alerts=int((events["severity"] == "alert").sum()),
        errors=int((events["severity"] == "error").sum()),
        level_share={
            name: count / len(frame) for name, count in zip(LEVEL_NAMES, levels, strict=True)
        },
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def print_family(run: FamilyRun, sample_axes: int) -> None:
    print(f"\nfamily {run.family} {PARAMS[run.family] or ''}")
    print(f"  {'stage':<10} {'best s':>8} {'median s':>9} {'M sample-axes/s':>16}")
    for stage, timings in [*run.stages.items(), ("total", run.total)]:
        best = min(timings)
        print(
            f"  {stage:<10} {best:8.3f} {statistics.median(timings):9.3f} "
            f"{sample_axes / best / 1e6:16.1f}"
        )
    shares = ", ".join(f"{name} {share:.2%}" for name, share in run.level_share.items())
    print(f"  worst level: {shares}")
    print(f"  events: {run.events:,} ({run.alerts:,} alert, {run.errors:,} error)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=10_000_000, help="rows (default 10M)")
    parser.add_argument("--axes", type=int, default=8, help="axes (default 8)")
    parser.add_argument(
        "--train", type=int, default=500_000, help="rows the models are fitted on (default 500k)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=list(PARAMS),
        default=list(PARAMS),
        help="families to time (default all)",
    )
    args = parser.parse_args(argv)
    if args.samples < 1000 or args.axes < 2 or args.repeat < 1:
        parser.error("--samples must be >= 1000, --axes >= 2 and --repeat >= 1")

    axes = [f"axis{k}" for k in range(1, args.axes + 1)]
    frame = make_frame(np.random.default_rng(args.seed), args.samples, axes)
    rss_after_data = peak_rss_mib()
    train_rows = min(args.train, args.samples)
    sample_axes = args.samples * args.axes
    print(
        f"samples {args.samples:,} x {args.axes} axes (seed {args.seed}), models fitted on the "
        f"first {train_rows:,}; best of {args.repeat}"
    )
    runs = [run_family(frame, axes, family, train_rows, args.repeat) for family in args.families]
    for run in runs:
        print_family(run, sample_axes)

    print(f"\n{'family':<9} {'total s':>8} {'M sample-axes/s':>16} {'goal':>6}  verdict")
    for run in runs:
        rate = sample_axes / min(run.total)
        goal = GOALS.get(run.family)
        verdict = "-" if goal is None else ("met" if rate >= goal else "MISSED")
        goal_text = "-" if goal is None else f"{goal / 1e6:.0f}"
        print(f"{run.family:<9} {min(run.total):8.3f} {rate / 1e6:16.1f} {goal_text:>6}  {verdict}")
    print(f"\npeak RSS {peak_rss_mib():,.0f} MiB (input frame alone: {rss_after_data:,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
