"""Detection regression on a slice of the Tennessee Eastman benchmark, with the default config.

The pipeline as shipped (model selection, out-of-fold two-sided thresholds, machine channel)
is trained on ``d00`` (500 normal samples) and scores the normal test file and the files of
faults 1, 4 and 11, each after the training window as ``bench/bench_detection.py`` does, through
the same public API the commands use (``run_training``, ``run_scoring``). The floors and
ceiling sit a little below/above the benchmark's figures (false alarms 0.05 % of normal
samples, ceiling 0.3 %; detection 1.00, 1.00 and 0.78), so no later change can silently give
the gain back. Nothing here depends on the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project

from Database import float_columns, write_chunks
from Orchestration import load_config, run_training
from Orchestration.scoring import run_scoring

DATA = Path(__file__).resolve().parent / "data" / "tep"
AXES = [f"x{i}" for i in range(1, 53)]
START = pd.Timestamp("2026-01-01T00:00:00Z")
STEP = pd.Timedelta(seconds=180)
TRAIN_ROWS, FAULT_START = 500, 160
FLOORS = {1: 0.95, 4: 0.95, 11: 0.70}
FALSE_ALARM_CEILING = 0.003


def _tables(engine: sa.Engine, target) -> list[int]:
    train = np.loadtxt(DATA / "d00.dat.gz").T
    files = [0, *FLOORS]
    for k in files:
        test = np.loadtxt(DATA / f"d{k:02d}_te.dat.gz")
        frame = pd.DataFrame(np.vstack([train, test]), columns=AXES)
        frame.insert(0, "ts", START + STEP * np.arange(len(frame)))
        columns = {"ts": sa.DateTime(timezone=True), **float_columns(AXES)}
        write_chunks(engine, target, f"tep_d{k:02d}", columns, [frame], index_column="ts")
    return files


@pytest.mark.slow
def test_default_config_detects_tep_faults_with_few_false_alarms(
    sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _tables(sqlite_db.engine, sqlite_db.target)
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    train_end = (START + STEP * TRAIN_ROWS).isoformat()
    config = make_project(
        tmp_path,
        f"data: {{table: tep_d00, axes: [{', '.join(AXES)}], train_end: '{train_end}'}}\n"
        "plots: {enabled: false}\n",
    )
    trained = run_training(load_config(config))
    assert trained.rows == TRAIN_ROWS
    flagged = {}
    for k in files:
        output = tmp_path / f"levels_{k:02d}.csv"
        run_scoring(
            load_config(config, [f"data.table=tep_d{k:02d}"]),
            version=trained.version,
            start=(START + STEP * TRAIN_ROWS).to_pydatetime(),
            output=output,
        )
        levels = pd.read_csv(output, usecols=["level"])["level"]
        assert len(levels) == 960
        flagged[k] = levels.isin(["alert", "error"]).to_numpy()

    normal = np.concatenate([flagged[0], *(flagged[k][:FAULT_START] for k in FLOORS)])
    false_alarm_rate = normal.mean()
    detection = {k: flagged[k][FAULT_START:].mean() for k in FLOORS}
    assert false_alarm_rate <= FALSE_ALARM_CEILING, false_alarm_rate
    for k, floor in FLOORS.items():
        assert detection[k] >= floor, (k, detection)
