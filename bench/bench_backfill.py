"""Peak memory and time of a long scoring backfill against PostgreSQL, per ``scoring.chunk_rows``.

Builds (if missing) ``bench_robot_wide`` with ``--rows`` samples x 8 axes (see
``bench_tables.py``), trains a version on the first ``--train-rows`` samples, then
runs ``python orchestrate.py score --start <training end> --end <last sample> --output CSV``
(``--no-output``: without the CSV) over the rest once per ``--chunk-rows`` value, each in a
fresh interpreter writing its own events table, and prints its wall time, peak RSS
(``wait4``), events stored and the CSV's SHA-256 (equal across chunk sizes: chunking changes
nothing but memory).

    python bench/bench_backfill.py          # 20M rows: 1M-row chunks, then one piece
    python bench/bench_backfill.py --rows 5000000 --chunk-rows 250000 1000000 default
    python bench/bench_backfill.py --root /path/to/other/checkout --chunk-rows default

``default`` passes no ``--set scoring.chunk_rows`` (the config's own default), so ``--root``
can point at a checkout from before chunking to measure it. ``--url`` as in
``bench_training.py``; a table whose row count differs is rebuilt, so point several
benchmarks with different sizes at different databases. The CSV (~250 bytes per sample) is
written to a temporary folder and deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from bench_tables import AXES, DT_SECONDS, WIDE_TABLE, ensure_wide_table, window  # noqa: E402
from bench_training import (  # noqa: E402
    DEFAULT_URL,
    ROOT,
    machine,
    print_table,
    run_child,
    write_config,
)

logger = logging.getLogger("bench_backfill")

ONE_PIECE = 10**12  # a chunk larger than any table: the whole range at once


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _describe(csv: Path) -> str:
    if not csv.exists():
        return ""
    return f"  CSV {csv.stat().st_size / 2**30:.2f} GiB sha256 {_sha256(csv)[:16]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="table rows (default 20M)")
    parser.add_argument(
        "--train-rows", type=int, default=1_000_000, help="rows the version trains on (1M)"
    )
    parser.add_argument(
        "--chunk-rows",
        nargs="+",
        default=["1000000", "one-piece"],
        help="scoring.chunk_rows values to run: numbers, 'one-piece' or 'default'",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL of the bench table")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code is run")
    parser.add_argument("--no-output", action="store_true", help="score without --output CSV")
    args = parser.parse_args(argv)
    if not 0 < args.train_rows < args.rows:
        parser.error("--train-rows must be between 0 and --rows")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    engine = sa.create_engine(sa.make_url(args.url).set(drivername="postgresql+psycopg2"))
    built = ensure_wide_table(engine, args.rows)
    env = {**os.environ, "DB_URL": args.url}
    orchestrate = [sys.executable, str(args.root / "orchestrate.py")]
    _, score_start = window(args.train_rows)
    _, score_end = window(args.rows)
    rows = [
        ("table", f"{WIDE_TABLE}: {args.rows:,} rows x 8 axes{' (built now)' if built else ''}"),
        ("machine", machine()),
        ("code", str(args.root)),
        ("backfill", f"{args.rows - args.train_rows:,} samples, {score_start} to {score_end}"),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, WIDE_TABLE, AXES, args.train_rows)
        trained = run_child([*orchestrate, "train", "--config", str(config), "--json"], env)
        rows.append(("train (setup)", f"{trained.json()['version']} in {trained.seconds:.1f} s"))
        for setting in args.chunk_rows:
            label = setting.replace("-", "_")
            output = folder / f"levels_{label}.csv"
            with engine.begin() as conn:
                for table in (f"bench_events_{label}", f"bench_events_{label}_state"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            command = [
                *orchestrate,
                "score",
                "--config",
                str(config),
                "--json",
                "--start",
                score_start.isoformat(),
                "--end",
                score_end.isoformat(),
                "--set",
                f"events.table=bench_events_{label}",
            ]
            if not args.no_output:
                command += ["--output", str(output)]
            if setting != "default":
                chunk = ONE_PIECE if setting == "one-piece" else int(setting)
                command += ["--set", f"scoring.chunk_rows={chunk}"]
            run = run_child(command, env)
            payload = run.json()
            events = sum(sum(by_axis.values()) for by_axis in payload["counts"].values())
            rows.append(
                (
                    f"score, chunk_rows {setting}",
                    f"{run.seconds:7.1f} s  peak RSS {run.peak_rss_mib / 1024:5.2f} GiB  "
                    f"{payload['samples']:,} samples ({payload['samples'] / run.seconds:,.0f}/s)  "
                    f"{events:,} events{_describe(output)}",
                )
            )
            output.unlink(missing_ok=True)
            logger.info("%s: %s", *rows[-1])
    print_table(f"Scoring backfill ({DT_SECONDS} s sampling)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
