"""Naive reference for the training benchmark: the straightforward way to do the same job.

``pandas.read_sql`` over SQLAlchemy, one scikit-learn ``LinearRegression`` per axis, metrics from
``sklearn.metrics``, ``np.percentile`` of the sorted, trimmed positive residuals, run lengths with
the pandas ``shift``/``cumsum``/``groupby`` idiom, and a matplotlib scatter of every point (fit and
residual figure per axis). Same policy numbers as the pipeline (``ThresholdPolicy`` defaults), so
its thresholds and metrics can be compared with those of ``orchestrate.py train``.

    python bench/naive_training.py --url URL --table T --start ISO --end ISO --out DIR

Prints one JSON object: ``timings`` per stage, ``metrics`` and ``thresholds`` per axis.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Thresholding import ThresholdPolicy

POLICY = ThresholdPolicy()


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True, the pandas way."""
    flags = pd.Series(mask)
    run_id = (flags != flags.shift()).cumsum()
    lengths = flags.groupby(run_id).agg(["first", "size"])
    return lengths.loc[lengths["first"], "size"].to_numpy()


def steps(runs: np.ndarray, quantile: float, seconds: float, dt_seconds: float) -> int:
    default = max(1, math.ceil(seconds / dt_seconds - 1e-9))
    if runs.size == 0:
        return default
    return max(default, math.ceil(float(np.quantile(runs, quantile)) - 1e-9))


def thresholds(residuals: np.ndarray, dt_seconds: float) -> dict[str, float | int]:
    finite = residuals[np.isfinite(residuals)]
    positives = np.sort(finite[finite > 0])
    trim = 0
    if POLICY.trim_top_ratio > 0 and positives.size >= POLICY.min_pos_for_trim:
        trim = math.floor(POLICY.trim_top_ratio * positives.size + 1e-9)
    kept = positives[: positives.size - trim]
    minc = float(np.percentile(kept, POLICY.minc_percentile))
    maxc = float(np.percentile(kept, POLICY.maxc_percentile))
    return {
        "MinC": minc,
        "MaxC": maxc,
        "T_long_steps": steps(
            run_lengths(residuals > minc),
            POLICY.alert_quantile,
            POLICY.alert_seconds_default,
            dt_seconds,
        ),
        "T_short_steps": steps(
            run_lengths(residuals > maxc),
            POLICY.error_quantile,
            POLICY.error_seconds_default,
            dt_seconds,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--axes", default=",".join(f"axis{k}" for k in range(1, 9)))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    axes = args.axes.split(",")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    engine = sa.create_engine(sa.make_url(args.url).set(drivername="postgresql+psycopg2"))
    query = sa.text(
        f"SELECT ts, {', '.join(axes)} FROM {args.table} "
        "WHERE ts >= :start AND ts < :end ORDER BY ts"
    )
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn, params={"start": args.start, "end": args.end})
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    lap("read_sql")

    time_s = (frame["ts"] - frame["ts"].iloc[0]).dt.total_seconds().to_numpy()
    dt_seconds = round(float(np.median(np.diff(time_s))), 6)
    models, predictions, residuals, metrics = {}, {}, {}, []
    for axis in axes:
        values = frame[axis].to_numpy(dtype="float64")
        usable = ~np.isnan(values) & (values != 0.0)
        model = LinearRegression().fit(time_s[usable].reshape(-1, 1), values[usable])
        predicted = model.predict(time_s.reshape(-1, 1))
        residual = values - predicted
        residual[~usable] = np.nan
        models[axis], predictions[axis], residuals[axis] = model, predicted, residual
        metrics.append(
            {
                "axis": axis,
                "n": int(usable.sum()),
                "r2": float(r2_score(values[usable], predicted[usable])),
                "mae": float(mean_absolute_error(values[usable], predicted[usable])),
                "rmse": float(math.sqrt(mean_squared_error(values[usable], predicted[usable]))),
            }
        )
    lap("fit_evaluate")

    limits = {axis: thresholds(residuals[axis], dt_seconds) for axis in axes}
    lap("thresholds")

    args.out.mkdir(parents=True, exist_ok=True)
    times = frame["ts"].dt.tz_convert(None).to_numpy()  # NumPy, not a Series: 10x faster to draw
    for axis in axes:
        values = frame[axis].to_numpy(dtype="float64")
        usable = ~np.isnan(values) & (values != 0.0)
        fig, ax = plt.subplots(figsize=(10, 4.5))
        ax.scatter(times[usable], values[usable], s=1)
        ax.plot(times, predictions[axis], color="tab:red")
        fig.savefig(args.out / f"{axis}_fit.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(10, 4.5))
        ax.scatter(times[usable], residuals[axis][usable], s=1)
        for level in (0.0, limits[axis]["MinC"], limits[axis]["MaxC"]):
            ax.axhline(level, linestyle="--")
        fig.savefig(args.out / f"{axis}_residual.png", dpi=100)
        plt.close(fig)
    lap("plots")

    print(
        json.dumps(
            {"rows": len(frame), "timings": timings, "metrics": metrics, "thresholds": limits}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
