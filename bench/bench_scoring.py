"""Benchmark of the pure scoring core: levels for every axis, worst level, event extraction.

Builds ``--samples`` rows x ``--axes`` axes of synthetic values and residuals in memory (seeded:
idle stretches where the value is 0 and the residual NaN, Gaussian residual noise, and injected
sustained excursions), then times only the scoring computation — no data generation, no
DataFrame assembly, no database. Prints rows/s, sample-axes/s and the peak RSS.

    python bench/bench_scoring.py                 # 10,000,000 samples x 8 axes
    python bench/bench_scoring.py --samples 1000000 --repeat 5
    python bench/bench_scoring.py --frame         # also time score_frame end to end
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Scoring import assign_levels, extract_events, score_frame

DT_SECONDS = 1.891
GOAL_SAMPLE_AXES_PER_SECOND = 20e6
# Standard-normal residual noise: MinC at its 75th and MaxC at its 95th percentile, the policy
# defaults; run lengths as in the design's example thresholds.json.
THRESHOLDS_ENTRY = {"MinC": 0.674, "MaxC": 1.645, "T_long_steps": 3, "T_short_steps": 2}


def make_busy(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Shared running/stopped pattern: ~2,000-sample busy spells, ~200-sample stops."""
    spells = rng.geometric(np.tile([1 / 2000, 1 / 200], samples // 1000 + 2))
    busy = np.repeat(np.tile([True, False], spells.size // 2), spells)[:samples]
    return np.concatenate((busy, np.ones(samples - busy.size, dtype=bool)))


def make_axis(rng: np.random.Generator, busy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and residuals of one axis, one sustained excursion per ~5,000 samples.

    The axis is idle (value 0, residual NaN) where the robot stops and, at ~2 % of the other
    samples, where this joint alone rests; elsewhere the residual is standard-normal noise.
    """
    samples = busy.size
    active = busy & (rng.random(samples) >= 0.02)
    values = np.where(active, 5.0 + rng.standard_normal(samples), 0.0)
    residuals = rng.standard_normal(samples)
    excursions = samples // 5000
    starts = rng.integers(0, samples, excursions)
    lengths = rng.integers(2, 40, excursions)
    heights = rng.uniform(1.0, 6.0, excursions)
    for start, length, height in zip(starts, lengths, heights, strict=True):
        residuals[start : start + length] += height
    residuals[~active] = np.nan
    return values, residuals


def score_core(
    ts: pd.DatetimeIndex,
    values: dict[str, np.ndarray],
    residuals: dict[str, np.ndarray],
    thresholds: dict[str, dict[str, float]],
) -> tuple[np.ndarray, pd.DataFrame]:
    """The measured work: per-axis levels, worst level across axes, events."""
    codes = {
        axis: assign_levels(
            values[axis],
            residuals[axis],
            minc=rule["MinC"],
            maxc=rule["MaxC"],
            t_long=rule["T_long_steps"],
            t_short=rule["T_short_steps"],
        )
        for axis, rule in thresholds.items()
    }
    axes = list(thresholds)
    worst = codes[axes[0]].copy()
    for axis in axes[1:]:
        np.maximum(worst, codes[axis], out=worst)
    events = extract_events(ts, residuals, codes, thresholds, axes=axes)
    return worst, events


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000_000, help="rows (default 10M)")
    parser.add_argument("--axes", type=int, default=8, help="axes (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; best is reported")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed")
    parser.add_argument(
        "--frame", action="store_true", help="also time score_frame (builds the output frame)"
    )
    args = parser.parse_args(argv)
    if args.samples < 1 or args.axes < 1 or args.repeat < 1:
        parser.error("--samples, --axes and --repeat must be >= 1")

    rng = np.random.default_rng(args.seed)
    axes = [f"axis{k}" for k in range(1, args.axes + 1)]
    ts = pd.date_range("2024-01-01", periods=args.samples, freq=f"{DT_SECONDS}s", tz="UTC")
    values: dict[str, np.ndarray] = {}
    residuals: dict[str, np.ndarray] = {}
    busy = make_busy(rng, args.samples)
    for axis in axes:
        values[axis], residuals[axis] = make_axis(rng, busy)
    thresholds = {axis: dict(THRESHOLDS_ENTRY) for axis in axes}
    rss_after_data = peak_rss_mib()

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        worst, events = score_core(ts, values, residuals, thresholds)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    sample_axes = args.samples * args.axes
    levels = np.bincount(worst, minlength=4)
    print(f"samples            {args.samples:,} x {args.axes} axes (seed {args.seed})")
    print(f"core time          best {best:.3f} s, median {statistics.median(timings):.3f} s")
    print(f"samples/s          {args.samples / best:,.0f}")
    print(
        f"sample-axes/s      {sample_axes / best:,.0f} "
        f"(goal {GOAL_SAMPLE_AXES_PER_SECOND:,.0f}: "
        f"{'met' if sample_axes / best >= GOAL_SAMPLE_AXES_PER_SECOND else 'MISSED'})"
    )
    print(
        "worst level share  "
        + ", ".join(
            f"{name} {count / args.samples:.2%}"
            for name, count in zip(("idle", "ok", "alert", "error"), levels, strict=True)
        )
    )
    print(
        f"events             {len(events):,} "
        f"({(events['severity'] == 'alert').sum():,} alert, "
        f"{(events['severity'] == 'error').sum():,} error)"
    )
    print(f"peak RSS           {peak_rss_mib():,.0f} MiB (input data alone: {rss_after_data:,.0f})")

    if args.frame:
        frame = pd.DataFrame({"ts": ts, **values, **{f"{a}_res": residuals[a] for a in axes}})
        started = time.perf_counter()
        result = score_frame(frame, None, thresholds)
        result.events()
        elapsed = time.perf_counter() - started
        print(
            f"score_frame+events {elapsed:.3f} s, {sample_axes / elapsed:,.0f} sample-axes/s "
            f"(builds the {len(result.frame.columns)}-column output frame)"
        )
        print(f"peak RSS           {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
