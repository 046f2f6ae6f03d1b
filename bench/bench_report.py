"""Morning digest benchmark: 1,000 assets and a day of events, against PostgreSQL.

Builds (every run, in a few seconds):

- ``bench_report_samples`` (``asset_id integer, ts timestamptz, axis1, axis2``), 2 s apart,
  generated server-side: the whole day of the 20 assets whose events are worst, the last two
  hours of the others;
- ``bench_report_events`` and its state: ``--events`` events per asset spread over the last
  24 hours (alert episodes, an error inside some, machine-channel events with contributors),
  ratios drawn at random; the state says each asset was scored up to the newest sample;
- ``bench_report_fleet_state``: every asset trained, some ``needs-data``, some ``failed``;
- a registry with a version (a flat linear model) for the 20 assets whose events are worst —
  the only ones the digest draws (``report.top_events``: 6).

Then times ``python orchestrate.py report --output digest.html --json`` as a whole process
(start-up and imports included) and prints its step timings; the goal is <= 30 s.

    python bench/bench_report.py                  # 1,000 assets x 4 events
    python bench/bench_report.py --assets 100     # a quicker look

Figures are printed; nothing is asserted. ``--url`` (default ``$DB_URL``, else the local test
server) names the database.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from Fleet import AssetOutcome, FleetStateStore  # noqa: E402 - after the path set-up
from ModelRegistry import ModelRegistry  # noqa: E402
from ModelSelection import select_model  # noqa: E402
from ModelTraining import AxisModelSet  # noqa: E402
from Scoring import EventStore  # noqa: E402

logger = logging.getLogger("bench_report")

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SAMPLES = "bench_report_samples"
EVENTS = "bench_report_events"
FLEET_STATE = "bench_report_fleet_state"
AXES = ["axis1", "axis2"]
NEWEST = pd.Timestamp("2026-01-10 06:00:00", tz="UTC")
GOAL_SECONDS = 30.0
DRAWN_ASSETS = 20


def build_samples(engine: sa.Engine, assets: int) -> None:
    """Up to ``NEWEST``, 2 s apart (axis1 ~ 10, axis2 ~ 5): the whole day of the assets the
    digest draws, the last two hours of the others."""
    day, rows = 43_200, 3600
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {SAMPLES}"))
        conn.execute(sa.text("SELECT setseed(0.42)"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {SAMPLES} AS SELECT a AS asset_id, "
                f"timestamptz '{NEWEST.isoformat()}' - (i * interval '2 seconds') AS ts, "
                "10 + random() AS axis1, 5 + random() AS axis2 "
                f"FROM generate_series(1, {assets}) AS a, generate_series(0, {day - 1}) AS i "
                f"WHERE a <= {DRAWN_ASSETS} OR i < {rows} ORDER BY a, ts"
            )
        )
        conn.execute(sa.text(f"CREATE INDEX ON {SAMPLES} (asset_id, ts)"))


def build_events(engine: sa.Engine, assets: int, per_asset: int) -> None:
    """``per_asset`` events of every asset in the last day; assets 1..20 have the worst."""
    store = EventStore(engine, _target(engine), EVENTS, SAMPLES)
    with engine.begin() as conn:
        for table in (store.state, store.events):
            table.drop(conn, checkfirst=True)
    store._prepare_tables()
    rng = np.random.default_rng(7)
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    rows, states = [], []
    for asset in range(1, assets + 1):
        boost = 3.0 if asset <= DRAWN_ASSETS else 1.0
        for k in range(per_asset):
            start = NEWEST - pd.Timedelta(minutes=float(rng.uniform(5, 110 if k == 0 else 1400)))
            duration = float(rng.uniform(4, 1800))
            severity = "error" if k % 3 == 1 else "alert"
            axis = "*" if k % 4 == 3 else AXES[k % 2]
            shares = json.dumps([{"axis": "axis1", "share": 0.7}, {"axis": "axis2", "share": 0.3}])
            rows.append(
                {
                    "asset": str(asset),
                    "source_table": SAMPLES,
                    "axis": axis,
                    "severity": severity,
                    "start_ts": start.to_pydatetime(),
                    "end_ts": (start + pd.Timedelta(seconds=duration)).to_pydatetime(),
                    "duration_s": duration,
                    "samples": int(duration / 2) + 1,
                    "peak_residual": 1.0,
                    "threshold": 1.0,
                    "suppressed": False,
                    "side": "above",
                    "peak_ts": start.to_pydatetime(),
                    "actual": 12.0,
                    "expected": 10.5,
                    "ratio": float(rng.uniform(1.0, 2.0) * boost),
                    "contributors": shares if axis == "*" else None,
                    "model_version": "v1",
                    "run_id": "bench",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        states.append(
            {
                "source_table": SAMPLES,
                "asset": str(asset),
                "scored_until": NEWEST.to_pydatetime(),
                "last_ts": NEWEST.to_pydatetime(),
                "model_version": "v1",
                "run_id": "bench",
                "updated_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(store.events.insert(), rows)
        conn.execute(store.state.insert(), states)
    outcomes = [
        AssetOutcome(str(a), "trained", version="v1", trained_at="2026-01-09T02:00:00+00:00")
        if a % 50
        else AssetOutcome(str(a), "needs-data", samples=10, missing=990)
        for a in range(1, assets + 1)
    ]
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {FLEET_STATE}"))
    FleetStateStore(engine, _target(engine), FLEET_STATE, SAMPLES).write(outcomes, "bench")


def _target(engine: sa.Engine):
    from Database import DatabaseTarget

    return DatabaseTarget(url=engine.url, embedded=False)


def publish_versions(root: Path, assets: int) -> None:
    """A flat linear version (expected 10.5 / 5.5) for the assets the digest draws."""
    train = pd.DataFrame({"time_s": [0.0, 1.0], "axis1": [10.5, 10.5], "axis2": [5.5, 5.5]})
    models = AxisModelSet(select_model("linear"), AXES).fit(train)
    rule = {
        "MinC": 0.45,
        "MaxC": 0.6,
        "MinC_low": -0.45,
        "MaxC_low": -0.6,
        "T_long_steps": 3,
        "T_short_steps": 2,
        "dt_seconds": 2.0,
    }
    files = {
        "models.json": json.dumps(models.to_dict()).encode(),
        "thresholds.json": json.dumps({a: rule for a in AXES}).encode(),
        "prep_stats.json": json.dumps(
            {"t0": "2026-01-09T00:00:00+00:00", "t0_kind": "datetime", "dt_seconds": 2.0}
        ).encode(),
    }
    for asset in range(1, min(assets, DRAWN_ASSETS) + 1):
        ModelRegistry(root / str(asset)).publish(files, meta={"axes": AXES}, run_id="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DB_URL") or DEFAULT_URL)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=4, help="events per asset (default 4)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url = sa.make_url(args.url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    engine = sa.create_engine(url)
    started = time.perf_counter()
    build_samples(engine, args.assets)
    build_events(engine, args.assets, args.events)
    folder = Path(tempfile.mkdtemp(prefix="bench_report_"))
    publish_versions(folder / "registry", args.assets)
    logger.info("built the bench data in %.1f s", time.perf_counter() - started)
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url_env": "DB_URL"},
                "data": {"table": SAMPLES, "asset_col": "asset_id", "axes": AXES},
                "registry": {"root_dir": str(folder / "registry")},
                "events": {"table": EVENTS},
                "fleet": {"table": FLEET_STATE},
            }
        )
    )
    page = folder / "digest.html"
    env = {**os.environ, "DB_URL": url.render_as_string(hide_password=False)}
    command = [sys.executable, str(ROOT / "orchestrate.py"), "report", "--config", str(config)]
    began = time.perf_counter()
    done = subprocess.run(
        [*command, "--output", str(page), "--json"], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"report failed ({done.returncode}):\n{done.stderr[-3000:]}")
    payload = json.loads(done.stdout)
    events = sum(sum(s.values()) for s in payload["totals"].values())
    drawn = page.read_text(encoding="utf-8").count("data:image/png;base64,")
    print(
        f"\n== digest of {args.assets} assets, {events} events in the last 24 h "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  wall {wall:.1f} s for the whole process (goal <= {GOAL_SECONDS:g} s)")
    print(f"  steps: {payload['timings']}")
    print(
        f"  top events {len(payload['top_events'])}, images {drawn}, page "
        f"{page.stat().st_size / 1e6:.2f} MB, first: {payload['top_events'][0]['asset']} "
        f"{payload['top_events'][0]['axis']} ratio {payload['top_events'][0]['ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
