"""The replay gate against scoring: time to replay ``registry.replay_days`` with a candidate
and the champion, next to scoring those days once.

Builds the embedded demo database (``--rows`` samples, ~7 days at 1.891 s) in a temporary
folder, trains v1 and v2 with the shipped ``config.yaml`` (plots off, ``registry.promote:
manual`` so that training itself runs no gate), then times, each ``--repeat`` times:

1. ``score``: ``run_scoring`` of the newest ``--days`` with v1 into a fresh events table
   (reads, scores, writes the events and the state);
2. ``gate``: ``run_gate`` of v2 against v1 over the same days (reads and scores twice, writes
   nothing).

Prints the median of each, their ratio and the issue 15 goal (gate <= 2 x score).

    python bench/bench_gate.py                    # 320,000 rows, 7 days, 3 repeats
    python bench/bench_gate.py --rows 100000 --days 2 --repeat 1
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from Database import build_demo_database  # noqa: E402
from DataExtractionAnalysis import newest_time  # noqa: E402
from ModelRegistry import ModelRegistry  # noqa: E402
from Orchestration import load_config, run_training  # noqa: E402
from Orchestration.context import open_database  # noqa: E402
from Orchestration.promotion import run_gate  # noqa: E402
from Orchestration.scoring import run_scoring  # noqa: E402

GOAL_RATIO = 2.0


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=320_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        database = build_demo_database(base / "demo.sqlite", rows=args.rows)
        overrides = [
            f"database.embedded_path={database}",
            f"registry.root_dir={base / 'registry'}",
            "registry.promote=manual",
            f"registry.replay_days={args.days}",
            "plots.enabled=false",
        ]
        loaded = load_config(ROOT / "config.yaml", overrides)
        for _ in range(2):
            run_training(loaded)
        registry = ModelRegistry(base / "registry")
        session = open_database(loaded, access="read")
        newest = pd.Timestamp(newest_time(session.engine, session.target, loaded.config.data))
        start = (newest - pd.Timedelta(days=args.days)).to_pydatetime()
        score_s, gate_s = [], []
        verdict: dict = {}
        for run in range(args.repeat):
            fresh = load_config(ROOT / "config.yaml", [*overrides, f"events.table=bench_ev{run}"])
            score_s.append(_timed(lambda f=fresh: run_scoring(f, version="v1", start=start)))

            def gate() -> None:
                verdict.update(run_gate(loaded, session, registry, "v2", "v1"))

            gate_s.append(_timed(gate))
        session.close()
    score, gated = statistics.median(score_s), statistics.median(gate_s)
    samples = verdict["replay"]["samples"]
    print(f"demo rows {args.rows}, replay {args.days:g} days ({samples} samples)")
    print(f"score once (v1, writes events)   median {score:7.2f} s  runs {_runs(score_s)}")
    print(f"replay gate (v2 vs v1, no write) median {gated:7.2f} s  runs {_runs(gate_s)}")
    print(
        f"gate / score = {gated / score:.2f} (goal <= {GOAL_RATIO:g}: "
        f"{'met' if gated / score <= GOAL_RATIO else 'NOT met'}); "
        f"verdict: {verdict['reason']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
