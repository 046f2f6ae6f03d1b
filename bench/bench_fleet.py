"""Fleet benchmark against PostgreSQL: 1,000 assets x 8 axes x 10,000 samples in one table.

Builds (if missing or of another size) ``bench_fleet`` (``asset_id integer, ts timestamptz,
axis1 .. axis8 double precision``, 2 s apart, rows stored in asset order with an index on
``(asset_id, ts)``), generated server-side, then times:

(a) one binary ``COPY bench_fleet TO STDOUT`` into /dev/null — the yardstick;
(b) ``python orchestrate.py train`` of the whole fleet with the default config (only the table,
    ``data.asset_col`` and ``data.train_end: -5m`` set: the newest 5 minutes of every asset are
    left for (c)), its own process on the local pool, with the peak memory of every worker;
(c) ``python orchestrate.py score`` of the fleet: the 5-minute increment of all assets;
(d) (b) and (c) again on a Dask ``LocalCluster`` of 2 worker processes (``--skip-dask``: not).

    python bench/bench_fleet.py                    # 1,000 assets x 10,000 samples
    python bench/bench_fleet.py --assets 100       # a quicker look

Figures are printed; nothing is asserted. The database URL comes from ``--url``, else
``$DB_URL``, else the local test server. Other processes on the 2 cores show up directly in
every figure: the load average is printed with them, and CPU seconds beside wall seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from bench_training import byte_compile, run_child, time_copy  # noqa: E402 - after the path set-up

logger = logging.getLogger("bench_fleet")

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TABLE = "bench_fleet"
AXES = [f"axis{k}" for k in range(1, 9)]
GOALS = {"train_over_copy": 3.0, "score_seconds": 30.0}


def ensure_table(engine: sa.Engine, assets: int, rows: int) -> None:
    """``bench_fleet`` with ``assets`` x ``rows`` samples, unless it holds exactly that."""
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}).scalar()
        if exists:
            count, distinct = conn.execute(
                sa.text(f"SELECT count(*), count(DISTINCT asset_id) FROM {TABLE}")
            ).one()
            if (count, distinct) == (assets * rows, assets):
                return
    logger.info("building %s: %d assets x %d samples", TABLE, assets, rows)
    started = time.perf_counter()
    noise = "sqrt(-2.0 * ln(1.0 - random())) * cos(2.0 * pi() * random())"
    values = ",\n  ".join(
        f"CASE WHEN i % 1800 < 60 THEN 0.0 ELSE {10 + 2.5 * k} * (1 + 0.05 * (a % 7)) "
        f"+ {0.5 + 0.1 * k} * {noise} END AS axis{k}"
        for k in range(1, 9)
    )
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(sa.text("SELECT setseed(0.42)"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {TABLE} AS SELECT a AS asset_id, "
                f"timestamptz '2026-01-01' + i * interval '2 seconds' AS ts,\n  {values}\n"
                f"FROM generate_series(1, {assets}) AS a, generate_series(0, {rows - 1}) AS i "
                "ORDER BY a, i"
            )
        )
        conn.execute(sa.text(f"CREATE INDEX ON {TABLE} (asset_id, ts)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {TABLE}"))
    logger.info("built %s in %.1f s", TABLE, time.perf_counter() - started)


def write_config(folder: Path, suffix: str, extra: dict[str, Any]) -> Path:
    config = {
        "database": {"url_env": "DB_URL"},
        "data": {"table": TABLE, "asset_col": "asset_id", "train_end": "-5m"},
        "registry": {"root_dir": str(folder / "registry")},
        "plots": {"dir": str(folder / "plots")},
        "events": {"table": f"bench_fleet_events_{suffix}"},
        "fleet": {"table": f"bench_fleet_state_{suffix}", **extra},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def drop_outputs(engine: sa.Engine, suffix: str) -> None:
    with engine.begin() as conn:
        events = f"bench_fleet_events_{suffix}"
        # The drift state tables too: a later run would otherwise continue their charts.
        for name in (events, f"{events}_state", f"{events}_drift", f"{events}_drift_levels"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS bench_fleet_state_{suffix}"))


def fleet_run(url: str, config: Path, command: str) -> dict[str, Any]:
    """Run ``orchestrate.py COMMAND --json``; its payload plus wall/CPU seconds and peak RSS."""
    env = {**os.environ, "DB_URL": url}
    before = os.times()
    child = run_child(
        [sys.executable, str(ROOT / "orchestrate.py"), command, "--config", str(config), "--json"],
        env,
    )
    after = os.times()
    payload = json.loads(child.stdout) if child.stdout.strip() else {}
    if child.returncode not in (0, 6, 7, 10):
        raise RuntimeError(f"{command} failed ({child.returncode}):\n{child.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {
        **payload,
        "wall_s": child.seconds,
        "cpu_s": cpu,
        "parent_peak_mib": child.peak_rss_mib,
    }


def worker_peaks(assets: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Peak RSS (MiB) and CPU seconds of each worker process, from the assets it reported."""
    peaks: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))
    for asset in assets:
        memory, cpu = peaks[asset["worker"]]
        peaks[asset["worker"]] = (
            max(memory, asset.get("peak_rss_mib", 0.0)),
            max(cpu, asset.get("worker_cpu_s", 0.0)),
        )
    return dict(peaks)


def print_workers(
    assets: list[dict[str, Any]], before: dict[str, tuple[float, float]] | None = None
) -> dict[str, tuple[float, float]]:
    """Print each worker's peak memory and CPU seconds (less ``before``: Dask workers live on
    from training to scoring); return the figures as reported."""
    peaks = worker_peaks(assets)
    spent = {w: cpu - (before or {}).get(w, (0.0, 0.0))[1] for w, (_, cpu) in peaks.items()}
    for worker, (memory, _) in sorted(peaks.items()):
        print(f"    worker {worker}: peak {memory:.0f} MiB, {spent[worker]:.1f} CPU s")
    total = sum(spent.values())
    print(
        f"    workers' CPU {total:.1f} s = {total / max(len(assets), 1) * 1000:.0f} ms per asset; "
        f"on 2 idle cores at least {total / 2:.1f} s"
    )
    return peaks


def report(name: str, copy_s: float, trained: dict[str, Any], scored: dict[str, Any]) -> None:
    load = os.getloadavg()[0]
    print(f"\n== {name} (load average {load:.1f})")
    print(f"  train: {trained['status']['detail']}")
    print(
        f"    wall {trained['wall_s']:.1f} s = {trained['wall_s'] / copy_s:.2f} x COPY "
        f"(goal <= {GOALS['train_over_copy']:g}); parent CPU {trained['cpu_s']:.1f} s, "
        f"peak {trained['parent_peak_mib']:.0f} MiB"
    )
    per_asset = sorted(a["seconds"] for a in trained["assets"])
    if per_asset:
        print(
            f"    per asset: median {per_asset[len(per_asset) // 2] * 1000:.0f} ms, "
            f"max {per_asset[-1] * 1000:.0f} ms"
        )
    after_training = print_workers(trained["assets"])
    print(f"  score: {scored['status']['detail']}")
    print(
        f"    wall {scored['wall_s']:.1f} s (goal <= {GOALS['score_seconds']:g} s); "
        f"parent CPU {scored['cpu_s']:.1f} s"
    )
    print_workers(scored["assets"], after_training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DB_URL") or DEFAULT_URL)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--only-dask", action="store_true", help="skip the local pool run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url = sa.make_url(args.url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    engine = sa.create_engine(url)
    ensure_table(engine, args.assets, args.rows)
    byte_compile(ROOT)  # as installed: workers start from bytecode
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    copy_s, tool = time_copy(libpq, f"COPY {TABLE} TO STDOUT (FORMAT binary)")
    print(f"(a) binary COPY of {args.assets * args.rows:,} samples ({tool}): {copy_s:.2f} s")
    folder = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    try:
        runs = {} if args.only_dask else {"local pool": ("local", {})}
        if not args.skip_dask:
            runs["dask LocalCluster, 2 workers"] = ("dask", {})
        cluster = None
        for name, (suffix, extra) in runs.items():
            if suffix == "dask":
                from distributed import LocalCluster

                # Workers import the pipeline by name, as `dask worker` started in ROOT would;
                # they are spawned with this process's sys.path.
                sys.path.insert(0, str(ROOT))
                cluster = LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
                extra = {"executor": "dask", "scheduler_address": cluster.scheduler_address}
            drop_outputs(engine, suffix)
            run_folder = folder / suffix
            run_folder.mkdir()
            config = write_config(run_folder, suffix, extra)
            # Where the Dask workers find the database (the URL never travels with a task).
            (run_folder / ".env").write_text(f"DB_URL={libpq}\n")
            trained = fleet_run(libpq, config, "train")
            scored = fleet_run(libpq, config, "score")
            report(name, copy_s, trained, scored)
            drop_outputs(engine, suffix)
        if cluster is not None:
            cluster.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        engine.dispose()


if __name__ == "__main__":
    main()
