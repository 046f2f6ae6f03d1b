"""Failure predictor: feature speed, apply speed, and the demo's held-out AUC and forewarning.

(a) features: ``window_features`` of ``--rows`` samples x 8 axes (1 s apart, 1-minute buckets,
    5- and 30-minute windows, events) — samples per second; goal >= 1 M/s;
(b) apply: ``predictor train`` then ``apply`` of a 70,000-record table (30 s sampling, 30 s
    buckets: 70,000 probabilities written) on SQLite (or ``--url``), timed end to end in this
    process, then again (idempotent: the same rows); goal well under a minute;
(c) ``--demo``: the embedded demo database; the predictor trains on the first half of the
    labelled anomalies' time (data.train_end) and is applied to the rest; AUC and forewarning of
    the held-out half against its horizon labels.

    python bench/bench_prediction.py [--rows 2000000] [--url postgresql://...] [--demo]

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from Database import (  # noqa: E402
    DEMO_ANOMALY_TABLE,
    DEMO_TABLE,
    build_demo_database,
    write_chunks,
)
from Orchestration import load_config  # noqa: E402
from Orchestration.prediction import apply_predictors, train_predictors  # noqa: E402
from Prediction import horizon_labels, out_of_fold_metrics, window_features  # noqa: E402

T0 = pd.Timestamp("2026-01-05", tz="UTC")


def bench_features(rows: int) -> None:
    rng = np.random.default_rng(0)
    ts = pd.Series(pd.date_range(T0, periods=rows, freq="1s"))
    columns = {f"axis{k}": rng.normal(5, 1, rows) for k in range(1, 9)}
    events = ts.iloc[:: max(1, rows // 500)]
    best = np.inf
    for _ in range(3):
        began = time.perf_counter()
        features = window_features(
            ts,
            columns,
            pd.Timedelta(minutes=1),
            [pd.Timedelta(minutes=5), pd.Timedelta(minutes=30)],
            events,
        )
        best = min(best, time.perf_counter() - began)
    print(
        f"(a) features: {rows:,} samples x 8 axes -> {len(features):,} buckets x "
        f"{features.shape[1]} features in {best:.3f} s (best of 3): "
        f"{rows / best / 1e6:.2f} M samples/s (goal >= 1 M/s)"
    )


def _machine(engine: sa.Engine, target, rows: int) -> None:
    rng = np.random.default_rng(4)
    a = 5.0 + rng.normal(0, 0.05, rows)
    incidents = [int(i) for i in np.linspace(600, rows - 600, 20)]
    for first in incidents:
        a[first - 80 : first] += np.linspace(0.0, 1.0, 80)
        a[first : first + 20] += 3.0
    frame = pd.DataFrame(
        {"ts": pd.date_range(T0, periods=rows, freq="30s"), "a": a, "b": rng.normal(7, 0.05, rows)}
    )
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(engine, target, "bench_predict", columns, [frame], if_exists="replace")
    pd.DataFrame(
        {
            "start_ts": [frame["ts"][i] for i in incidents],
            "end_ts": [frame["ts"][i + 19] for i in incidents],
            "axis": "a",
            "severity": "error",
        }
    ).to_sql("bench_predict_failures", engine, index=False, if_exists="replace")


def bench_apply(url: str | None, rows: int = 70_000) -> None:
    from Database import DatabaseConfig, connect_engine, resolve_target

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{folder / 'bench.sqlite'}"
        os.environ["DB_URL"] = url
        target = resolve_target(DatabaseConfig(), folder, {"DB_URL": url})
        engine = connect_engine(target, DatabaseConfig(), access="create")
        _machine(engine, target, rows)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS bench_failure_risk"))
        engine.dispose()
        config = folder / "config.yaml"
        config.write_text("{}\n", encoding="utf-8")
        loaded = load_config(
            config,
            [
                "data.table=bench_predict",
                "data.axes=[a, b]",
                "labels.table=bench_predict_failures",
                "events.table=bench_predict_events",
                "predictor.bucket=30s",
                "predictor.windows=[5m, 30m]",
                "predictor.table=bench_failure_risk",
                "predictor.n_estimators=50",
            ],
        )
        began = time.perf_counter()
        trained = train_predictors(loaded)
        train_s = time.perf_counter() - began
        timings = []
        for _ in range(2):
            began = time.perf_counter()
            applied = apply_predictors(loaded, since=T0.to_pydatetime())
            timings.append(time.perf_counter() - began)
        metrics = trained.answers[0].metrics or {}
        print(
            f"(b) apply: {rows:,} records ({target.dialect}) -> "
            f"{applied.answers[0].written:,} probabilities in {timings[0]:.1f} s, again "
            f"{timings[1]:.1f} s (goal well under 60 s); train {train_s:.1f} s, out-of-fold AUC "
            f"{metrics.get('auc')}, status {applied.code}"
        )


def bench_demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.pop("DB_URL", None)
        path = build_demo_database(folder / "demo.sqlite")
        engine = sa.create_engine(f"sqlite:///{path}")
        labels = pd.read_sql_table(DEMO_ANOMALY_TABLE, engine)
        with engine.connect() as conn:
            first, last = conn.execute(sa.text(f"SELECT min(ts), max(ts) FROM {DEMO_TABLE}")).one()
        engine.dispose()
        starts = pd.to_datetime(labels["start_ts"], utc=True).sort_values()
        middle = starts.iloc[len(starts) // 2].floor("h")
        config = folder / "config.yaml"
        config.write_text("{}\n", encoding="utf-8")
        common = [
            "database.embedded_demo=true",
            f"database.embedded_path={path}",
            f"labels.table={DEMO_ANOMALY_TABLE}",
            f"predictor.root_dir={folder / 'predictors'}",
            f"predictor.feature_dir={folder / 'features'}",
        ]
        loaded = load_config(config, [*common, f"data.train_end={middle.isoformat()}"])
        trained = train_predictors(loaded)
        applied = apply_predictors(loaded, since=middle.to_pydatetime())
        engine = sa.create_engine(f"sqlite:///{path}")
        risk = pd.read_sql_table("failure_risk", engine)
        engine.dispose()
        buckets = pd.DatetimeIndex(pd.to_datetime(risk["bucket_start"], utc=True))
        predictor = loaded.config.predictor
        held = labels[pd.to_datetime(labels["start_ts"], utc=True) >= middle]
        target = horizon_labels(
            buckets, pd.Timedelta(predictor.bucket), held, pd.Timedelta(predictor.horizon)
        )
        metrics = out_of_fold_metrics(
            buckets,
            target["label"].to_numpy(),
            risk["probability"].to_numpy(),
            held,
            pd.Timedelta(predictor.horizon),
            pd.Timedelta(predictor.bucket),
            predictor.probability_threshold,
            0,
        )
        print(
            f"(c) demo: trained on {first} .. {middle} ({trained.answers[0].detail}); held out "
            f"{len(held)} incidents after it: AUC {metrics.auc}, warned {metrics.warned} of "
            f"{metrics.incidents}, mean forewarning {metrics.mean_forewarning_s} s, precision "
            f"{metrics.precision}, recall {metrics.recall} ({applied.detail}; data end {last})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--url", help="database for (b) (default: a temporary SQLite file)")
    parser.add_argument("--demo", action="store_true", help="also (c), on the demo database")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench_features(args.rows)
    bench_apply(args.url)
    if args.demo:
        bench_demo()


if __name__ == "__main__":
    main()
