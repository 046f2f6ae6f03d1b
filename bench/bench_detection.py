"""Detection benchmark: false alarms and detections of the real commands with the default config.

Two data sets, both run through ``main.py`` / ``orchestrate.py`` exactly as a user would, with
the shipped defaults (no per-dataset tuning; only the data's own table, axes and windows are
set):

Tennessee Eastman (TEP, ``../shared/datasets/tep``)
    One SQLite table per test file: the 500 ``d00.dat`` samples (the training window), then the
    960 samples of the test file, at ``ts = i * 180 s``. A version is trained per model family
    (``auto`` and each family alone) on the training window; every table's test part is scored
    with ``score --output``, and a sample counts as flagged when its level is alert or error.
    Reported as the literature does: per fault the detection rate (share of samples 160-959
    flagged), the false-alarm rate over all normal samples (``d00_te`` and samples 0-159 of every
    file), and the mean detection rate without faults 3, 9 and 15.

The demo robot
    ``demo-db`` (default size), ``main.py`` (the shipped config trains on the first 80 %),
    ``score`` (the rest), then ``evaluate --json`` against the demo's labels: event recall and
    precision, false events per day, time to detect; and the training summary's expected alarm
    rate next to the false events scoring then observed.

Prints tables; asserts nothing (figures, not a test)::

    python bench/bench_detection.py                       # TEP (auto and every family) + demo
    python bench/bench_detection.py --only tep --families auto,cross
    python bench/bench_detection.py --only demo
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEP = ROOT.parent / "shared" / "datasets" / "tep"
FAMILIES = ("auto", "constant", "linear", "spline", "ar", "cross", "pca", "seed")
SEED_PRESET = (
    "model.type=linear",
    "model.machine=none",
    "thresholds.calibration=in_sample",
    "thresholds.side=upper",
    "thresholds.pooling=axis",
    "thresholds.minc_percentile=75",
    "thresholds.maxc_percentile=95",
    "thresholds.alert_min_steps=1",
    "thresholds.error_min_steps=1",
)
"""``seed``: the keys of ``configs/seed.yaml`` (the seed's model and thresholds)."""


def _model_options(family: str) -> list[str]:
    """``--set`` options training one family (``auto`` chooses; ``seed`` is the seed preset)."""
    keys = SEED_PRESET if family == "seed" else (f"model.type={family}",)
    return [option for key in keys for option in ("--set", key)]


TRAIN_ROWS, TEST_ROWS, FAULT_START = 500, 960, 160
HARD_FAULTS = (3, 9, 15)
START = pd.Timestamp("2026-01-01T00:00:00Z")
STEP = pd.Timedelta(seconds=180)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run an entry point with ``--json``; its JSON object (exit codes 0, 6, 7 are fine)."""
    done = subprocess.run(
        [sys.executable, *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode not in (0, 6, 7):
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def tep_tables(tep: Path, folder: Path) -> dict[int, Path]:
    """One CSV per test file: training samples, then the test file's samples."""
    train = np.loadtxt(tep / "d00.dat").T
    columns = [f"x{i}" for i in range(1, 53)]
    csvs = {}
    for k in range(22):
        test = np.loadtxt(tep / f"d{k:02d}_te.dat")
        data = pd.DataFrame(np.vstack([train, test]), columns=columns)
        data.insert(0, "ts", START + STEP * np.arange(len(data)))
        csvs[k] = folder / f"tep_d{k:02d}.csv"
        data.to_csv(csvs[k], index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    return csvs


def bench_tep(tep: Path, families: list[str], jobs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-tep-"))
    try:
        env = {**os.environ, "DB_URL": f"sqlite:///{work / 'tep.sqlite'}"}
        config = work / "config.yaml"
        axes = ", ".join(f"x{i}" for i in range(1, 53))
        config.write_text(
            "data:\n"
            f"  axes: [{axes}]\n"
            "registry: {root_dir: registry}\n"
            "plots: {enabled: false}\n"
            "labels: {table: null}\n",
            encoding="utf-8",
        )
        common = ["--config", str(config)]
        started = time.perf_counter()
        for k, csv in tep_tables(tep, work).items():
            run(
                [
                    str(ROOT / "orchestrate.py"),
                    "ingest",
                    str(csv),
                    "--table",
                    f"tep_d{k:02d}",
                    *common,
                ],
                work,
                env,
            )
        train_end = (START + STEP * TRAIN_ROWS).isoformat()
        for family in families:
            run(
                [
                    str(ROOT / "main.py"),
                    *common,
                    *_model_options(family),
                    "--set",
                    "data.table=tep_d00",
                    "--set",
                    f"data.train_end={train_end}",
                    "--set",
                    f"registry.version_tag=tep-{family}",
                ],
                work,
                env,
            )

        def score(job: tuple[str, int]) -> tuple[str, int, np.ndarray]:
            family, k = job
            output = work / f"{family}_{k:02d}.csv"
            run(
                [
                    str(ROOT / "orchestrate.py"),
                    "score",
                    *common,
                    "--version",
                    f"tep-{family}",
                    "--set",
                    f"data.table=tep_d{k:02d}",
                    "--set",
                    f"events.table=events_{family}",
                    "--start",
                    train_end,
                    "--output",
                    str(output),
                ],
                work,
                env,
            )
            levels = pd.read_csv(output, usecols=["level"])["level"].to_numpy()
            return family, k, np.isin(levels, ["alert", "error"])

        jobs_list = [(family, k) for family in families for k in range(22)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            flagged = {(f, k): m for f, k, m in pool.map(score, jobs_list)}
        elapsed = time.perf_counter() - started
        print(f"\nTEP: {len(families)} families x 22 test files, {elapsed:.0f} s\n")
        header = f"{'family':<9} {'FAR':>6} {'meanDR':>7}  " + " ".join(
            f"{k:>4}" for k in range(1, 22)
        )
        print(header)
        print("-" * len(header))
        for family in families:
            normal = [flagged[(family, 0)]] + [
                flagged[(family, k)][:FAULT_START] for k in range(1, 22)
            ]
            normal_flags = np.concatenate(normal)
            far = normal_flags.mean()
            rates = {k: flagged[(family, k)][FAULT_START:].mean() for k in range(1, 22)}
            mean_dr = np.mean([r for k, r in rates.items() if k not in HARD_FAULTS])
            print(
                f"{family:<9} {far:>6.2%} {mean_dr:>7.3f}  "
                + " ".join(f"{rates[k]:>4.2f}" for k in range(1, 22))
            )
        print(
            "\nFAR: share of the 4,320 normal samples flagged (d00_te and samples 0-159 of each "
            "fault file); meanDR: mean detection rate over samples 160-959 without faults 3, 9, 15."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_demo() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        shutil.copy(ROOT / "config.yaml", work / "config.yaml")
        env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
        common = ["--config", str(work / "config.yaml")]
        started = time.perf_counter()
        run([str(ROOT / "orchestrate.py"), "demo-db", *common], work, env)
        trained = run([str(ROOT / "main.py"), *common], work, env)
        scored = run([str(ROOT / "orchestrate.py"), "score", *common], work, env)
        evaluated = run([str(ROOT / "orchestrate.py"), "evaluate", *common], work, env)
        elapsed = time.perf_counter() - started
        report = evaluated["evaluation"]
        expected = trained.get("expected_events_per_day")
        print(
            f"\nDemo robot ({elapsed:.0f} s; trained {trained['rows']} rows, scored "
            f"{scored['samples']} samples = {report['days']:.2f} days)\n"
        )
        rows = [
            ("labelled anomalies in the scored range", report["labels"]),
            ("found (event recall)", f"{report['labels_found']} ({report['event_recall']:.3f})"),
            ("events", report["events"]),
            (
                "events overlapping a label (precision)",
                f"{report['true_events']} ({report['event_precision']:.3f})",
            ),
            ("false events", report["false_events"]),
            ("false events per day", f"{report['false_events_per_day']:.2f}"),
            (
                "expected false events per day (training)",
                f"{expected:.2f}" if expected is not None else "-",
            ),
            (
                "mean time to detect",
                f"{report['mean_time_to_detect_s']:.0f} s"
                if report["mean_time_to_detect_s"] is not None
                else "-",
            ),
            (
                "pointwise precision / recall / F1",
                f"{report['precision']:.3f} / {report['recall']:.3f} / {report['f1']:.3f}",
            ),
            ("pointwise false-alarm rate", f"{report['false_alarm_rate']:.4%}"),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        missed = [r for r in report["per_label"] if not r["found"]]
        for row in missed:
            print(
                f"  missed: {row['kind']} on {row['axis'] or 'several axes'} at {row['start_ts']}"
            )
        print(
            "\nevents per label: "
            + ", ".join(f"{r['kind']}:{r['events']}" for r in report["per_label"])
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["tep", "demo"], help="run one data set")
    parser.add_argument("--tep-dir", type=Path, default=DEFAULT_TEP, help="folder of the TEP files")
    parser.add_argument("--families", default=",".join(FAMILIES), help="model.type values for TEP")
    parser.add_argument("--jobs", type=int, default=2, help="score runs at the same time")
    args = parser.parse_args()
    if args.only in (None, "tep"):
        bench_tep(args.tep_dir, [f for f in args.families.split(",") if f], args.jobs)
    if args.only in (None, "demo"):
        bench_demo()


if __name__ == "__main__":
    main()
