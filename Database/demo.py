"""The embedded demo database: deterministic synthetic robot joint currents in SQLite.

Shaped like real telemetry of an 8-axis robot: ~1.891 s sampling with millisecond jitter,
a faint 64 s work cycle under sensor noise, idle stretches where every axis is exactly 0, a
slow upward drift on axis3, a few missing samples, and sustained injected anomalies whose
ground truth is stored beside the samples (table ``demo_injected_anomalies``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .config import DatabaseConfig
from .connection import DatabaseTarget, connect_engine
from .tables import float_columns, write_chunks

__all__ = [
    "DEMO_AXES",
    "DEMO_LONG_TABLE",
    "DEMO_START",
    "DEMO_TABLE",
    "DemoData",
    "build_demo_database",
    "demo_data",
    "ensure_demo_database",
]

logger = logging.getLogger(__name__)

DEMO_TABLE = "robot_samples"
DEMO_LONG_TABLE = "robot_samples_long"
DEMO_ANOMALY_TABLE = "demo_injected_anomalies"
DEMO_AXES = tuple(f"axis{k}" for k in range(1, 9))
DEMO_START = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
DEFAULT_ROWS = 100_000  # ~2.2 days at 1.891 s
_SEED = 20260105
_BASE_CURRENT = np.array([4.0, 9.0, 6.5, 3.0, 2.0, 1.5, 1.2, 0.8])  # amperes, axis1..axis8
_CYCLE_SECONDS = 64.0
_DRIFT_AXIS = 2  # axis3 (0-based)
_DRIFT_PER_DAY = 0.35  # amperes per day
# Idle stretches as (start, length), both fractions of the series, so they never overlap the
# injected anomalies below whatever the length: every axis exactly 0.
_IDLE = ((0.12, 0.007), (0.37, 0.0095), (0.61, 0.005), (0.86, 0.008))
# Injected sustained anomalies: (axis index 0-based, start fraction, samples, added amperes).
_ANOMALIES = (
    (1, 0.30, 18, 4.0),
    (4, 0.55, 12, 1.6),
    (0, 0.83, 25, 2.5),
    (6, 0.91, 9, 1.4),
    (3, 0.95, 40, 2.2),
)


@dataclass(frozen=True)
class DemoData:
    """The synthetic samples (WIDE, ``ts`` + ``axis1..axis8``) and the injected anomalies."""

    samples: pd.DataFrame
    anomalies: pd.DataFrame


def demo_data(rows: int = DEFAULT_ROWS) -> DemoData:
    """Generate the deterministic demo dataset (same ``rows`` → identical data).

    Raises:
        ValueError: ``rows`` is below 1000 (too short for idle stretches and anomalies).
    """
    if rows < 1000:
        raise ValueError(f"the demo database needs at least 1000 rows, got {rows}")
    rng = np.random.default_rng(_SEED)
    # Most intervals are the logger's nominal 1891 ms; the rest jitter by up to 40 ms, so the
    # median interval is exactly 1.891 s for any length, as on the real robot.
    jitter = rng.integers(-40, 41, size=rows - 1)
    step_ms = 1891 + np.where(rng.random(rows - 1) < 0.6, 0, jitter)
    offsets_ms = np.concatenate(([0], np.cumsum(step_ms)))
    ts = DEMO_START + pd.to_timedelta(offsets_ms, unit="ms")
    t = offsets_ms / 1000.0

    phases = np.linspace(0.0, 2 * np.pi, len(_BASE_CURRENT), endpoint=False)
    cycle = np.sin(2 * np.pi * t[:, None] / _CYCLE_SECONDS + phases[None, :])
    values = _BASE_CURRENT * (1.0 + 0.02 * cycle)
    values += rng.normal(0.0, 0.05, size=values.shape) * _BASE_CURRENT
    values[:, _DRIFT_AXIS] += _DRIFT_PER_DAY * t / 86_400.0

    for start_fraction, length_fraction in _IDLE:
        start = int(start_fraction * rows)
        values[start : start + max(1, int(length_fraction * rows)), :] = 0.0

    anomalies = []
    for axis, start_fraction, length, amps in _ANOMALIES:
        start = int(start_fraction * rows)
        values[start : start + length, axis] += amps
        anomalies.append(
            {
                "axis": DEMO_AXES[axis],
                "start": ts[start],
                "end": ts[start + length - 1],
                "samples": length,
                "added_amperes": amps,
            }
        )
    missing = rng.choice(rows, size=max(1, rows // 5000), replace=False)
    values[missing, 5] = np.nan  # a few dropped readings on axis6

    samples = pd.DataFrame(np.round(values, 4), columns=list(DEMO_AXES))
    samples.insert(0, "ts", ts)
    return DemoData(samples=samples, anomalies=pd.DataFrame(anomalies))


def _long(samples: pd.DataFrame) -> pd.DataFrame:
    """LONG layout ``ts, axis_id, value``; missing readings are absent rows, as in real logs."""
    long = samples.melt(id_vars="ts", var_name="axis", value_name="value").dropna()
    long["axis_id"] = long.pop("axis").str.removeprefix("axis").astype("int64")
    return long[["ts", "axis_id", "value"]].sort_values(["ts", "axis_id"], kind="stable")


def build_demo_database(
    path: Path, rows: int = DEFAULT_ROWS, schema: Literal["wide", "long"] = "wide"
) -> Path:
    """(Re)build the demo SQLite file at ``path`` atomically (written aside, then renamed).

    ``robot_samples`` (WIDE) is always written, so the default config keeps working;
    ``schema="long"`` adds ``robot_samples_long`` (``ts, axis_id, value``) with the same
    samples. The injected-anomaly ground truth is written in both cases.

    Returns:
        ``path``.
    """
    data = demo_data(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".demo-", suffix=".sqlite", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        target = DatabaseTarget(url=sa.URL.create("sqlite", database=str(tmp)), embedded=True)
        engine = connect_engine(target, DatabaseConfig())
        try:
            columns = {"ts": sa.DateTime(), **float_columns(DEMO_AXES)}
            write_chunks(engine, target, DEMO_TABLE, columns, [data.samples], index_column="ts")
            if schema == "long":
                columns = {"ts": sa.DateTime(), "axis_id": sa.Integer(), "value": sa.Float(53)}
                write_chunks(
                    engine,
                    target,
                    DEMO_LONG_TABLE,
                    columns,
                    [_long(data.samples)],
                    index_column="ts",
                )
            anomaly_columns = {
                "axis": sa.String(32),
                "start": sa.DateTime(),
                "end": sa.DateTime(),
                "samples": sa.Integer(),
                "added_amperes": sa.Float(53),
            }
            write_chunks(engine, target, DEMO_ANOMALY_TABLE, anomaly_columns, [data.anomalies])
        finally:
            engine.dispose()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("built the embedded demo database %s (%d rows, %s layout)", path, rows, schema)
    return path


def ensure_demo_database(path: Path) -> Path:
    """Create the demo database at ``path`` on first use; an existing file is left as it is."""
    if not path.exists():
        logger.info("creating the embedded demo database at %s (first use)", path)
        build_demo_database(path)
    return path
