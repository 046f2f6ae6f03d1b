"""Learned against percentile thresholds on the demo: false events, without losing an incident.

Builds the embedded demo database in a temporary folder, then:

1. the *confirmed half*: the labelled anomalies that start before the middle of the scored
   range (the last 20 % of the demo) go into a table of their own, as if operators had
   confirmed them; the others are the *held-out half*;
2. trains two versions on the window up to that middle (so the confirmed half lies in it and is
   masked from the fits): ``thresholds.mode: percentile`` and ``learned`` (default config
   otherwise);
3. evaluates both on the rest (the held-out half) against all labels: incidents found, false
   events, false events per day, mean time to detect;
4. draws ``learned_vs_percentile.png`` (``--figure``, default ``out/``) and prints the figures
   and each axis's choice.

    python bench/demo_learned_thresholds.py [--rows 320000] [--figure out/learned.png]
        [--seed-preset] [--periods K] [--set thresholds.learned.min_labels=2 ...]

``--periods K`` gives the demo more labelled history: K demo periods of ``--rows`` samples
each, one after the other (another seed each: another stretch of the same robot, with its own
26 labelled anomalies). The confirmed half is then every labelled window of the first K-1
periods (training runs up to the start of the last period) and the held-out half the last
period's 26.

Nothing is asserted; the figures go into docs/feedback.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_detection import SEED_PRESET  # noqa: E402  (configs/seed.yaml's keys, one list)

from Database import DEMO_ANOMALY_TABLE, build_demo_database  # noqa: E402
from Database.demo import _build  # noqa: E402
from Database.demo_signals import _SEED, DEMO_START, DemoData, demo_data  # noqa: E402
from Orchestration import load_config, run_training  # noqa: E402
from Orchestration.evaluation import run_evaluation  # noqa: E402

CONFIRMED = "confirmed_half"


def _periods(path: Path, rows: int, periods: int) -> pd.Timestamp:
    """Rebuild the demo as ``periods`` stretches of ``rows`` samples; the last one's start."""
    start, parts = DEMO_START, []
    for k in range(periods):
        part = demo_data(rows, seed=_SEED + k, start=start)
        parts.append(part)
        start = part.samples["ts"].iloc[-1] + pd.Timedelta(seconds=60)
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    labels = pd.concat([p.labels for p in parts], ignore_index=True)
    _build(path, "wide", data=DemoData(samples=samples, labels=labels), replace=True)
    return parts[-1].samples["ts"].iloc[0].floor("s")


def _split(engine: sa.Engine, middle: pd.Timestamp | None) -> pd.Timestamp:
    """Write the confirmed half (labels before ``middle``; default 90 % of the time) into its
    own table; returns ``middle``."""
    with engine.connect() as conn:
        first, last = conn.execute(sa.text("SELECT min(ts), max(ts) FROM robot_samples")).one()
        labels = pd.read_sql_table(DEMO_ANOMALY_TABLE, conn)
    first, last = pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC")
    if middle is None:
        middle = (first + 0.9 * (last - first)).floor("s")
    starts = pd.to_datetime(labels["start_ts"], utc=True)
    labels[starts < middle].to_sql(CONFIRMED, engine, index=False, if_exists="replace")
    print(
        f"{int((starts < middle).sum())} labelled windows before {middle} (confirmed half, "
        f"in the training window), {int((starts >= middle).sum())} after (held out)"
    )
    return middle


def _version(folder: Path, middle: pd.Timestamp, mode: str, preset: list[str]) -> dict:
    overrides = [
        *preset,
        "database.embedded_demo=true",
        f"database.embedded_path={folder / 'demo.sqlite'}",
        f"registry.root_dir={folder / mode}",
        "plots.enabled=false",
        # The demo's injected stuck axes (labelled anomalies) grade its sensors low; this
        # benchmark measures the thresholds, so it trains with them and a warning.
        "health.on_low=warn",
        f"data.train_end={middle.isoformat()}",
        f"labels.table={CONFIRMED}",
        f"thresholds.mode={mode}",
    ]
    config = folder / "config.yaml"
    config.write_text("{}\n", encoding="utf-8")
    began = time.perf_counter()
    result = run_training(load_config(config, overrides))
    trained = time.perf_counter() - began
    evaluated = run_evaluation(
        load_config(config, [*overrides, f"labels.table={DEMO_ANOMALY_TABLE}"])
    )
    report = evaluated.report
    sources = {
        axis: record.get("threshold_source", "percentile")
        for axis, record in result.thresholds.items()
    }
    return {
        "mode": mode,
        "train_s": round(trained, 1),
        "held_out_labels": report.labels,
        "found": report.labels_found,
        "events": report.events,
        "false_events": report.false_events,
        "false_events_per_day": report.false_events_per_day,
        "mean_time_to_detect_s": report.mean_time_to_detect_s,
        "learned_axes": sorted(a for a, s in sources.items() if s == "learned"),
        "choices": {
            axis: record.get("learned", {})
            for axis, record in result.thresholds.items()
            if "learned" in record
        },
        "missed": [
            (str(row["start_ts"]), row["axis"], row["kind"])
            for row in report.per_label
            if not row["found"]
        ],
    }


def _figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    modes = [row["mode"] for row in rows]
    axes[0].bar(modes, [row["false_events"] for row in rows], color=["#888", "#2a7"])
    axes[0].set_title("false events (held-out part)")
    axes[1].bar(modes, [row["found"] for row in rows], color=["#888", "#2a7"])
    axes[1].axhline(rows[0]["held_out_labels"], color="k", lw=0.8, ls="--")
    axes[1].set_title(f"incidents found (of {rows[0]['held_out_labels']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=320_000)
    parser.add_argument("--figure", type=Path, default=ROOT / "out" / "learned_vs_percentile.png")
    parser.add_argument(
        "--seed-preset",
        action="store_true",
        help="model and percentiles of configs/seed.yaml (linear, 75th/95th percentiles: many "
        "false events) instead of the defaults",
    )
    parser.add_argument(
        "--periods",
        type=int,
        default=1,
        help="K demo periods of --rows samples one after the other; train on the first K-1 "
        "(their labels confirmed), evaluate on the last (default 1: train on 90 %% of the demo)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more config overrides for both versions, e.g. thresholds.learned.min_labels=2",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.pop("DB_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = build_demo_database(folder / "demo.sqlite", rows=args.rows)
        last = _periods(path, args.rows, args.periods) if args.periods > 1 else None
        engine = sa.create_engine(f"sqlite:///{path}")
        middle = _split(engine, last)
        engine.dispose()
        preset = [*(SEED_PRESET if args.seed_preset else []), *args.overrides]
        rows = [_version(folder, middle, mode, preset) for mode in ("percentile", "learned")]
    for row in rows:
        print(
            f"{row['mode']:>10}: found {row['found']}/{row['held_out_labels']}, "
            f"{row['events']} events, {row['false_events']} false "
            f"({row['false_events_per_day'] or 0:.2f}/day), mean time to detect "
            f"{row['mean_time_to_detect_s'] or 0:.0f} s, train {row['train_s']} s; "
            f"learned axes {row['learned_axes']}; missed {row['missed']}"
        )
    for axis, choice in rows[1]["choices"].items():
        print(f"  {axis}: {choice}")
    _figure(rows, args.figure)


if __name__ == "__main__":
    main()
