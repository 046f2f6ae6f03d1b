"""The fast training path gives the thresholds and metrics of the straightforward one.

Fast: ``run_training`` as shipped — ADBC (binary COPY → Arrow, zero-copy), the pivot in the
database for LONG tables, closed-form fits, blocked metrics, in-place percentile selection,
vectorised run lengths, one axis's predictions at a time, two threads.

Straightforward: ``pandas.read_sql`` over SQLAlchemy (LONG rows pivoted with
``DataFrame.pivot``), one scikit-learn ``LinearRegression`` per axis, ``sklearn.metrics``,
``np.percentile`` of the sorted, trimmed positive residuals and a plain loop over the samples
for the run lengths — written from the policy in DESIGN.md, not from the pipeline's code.

Both run on the same small synthetic table in a real PostgreSQL database.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from conftest import Db
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from Database import write_chunks
from Orchestration import STEPS, load_config, run_training
from Thresholding import SEED_POLICY, ThresholdPolicy

pytestmark = pytest.mark.postgres

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
AXES = ["axis1", "axis2", "axis3"]
RELATIVE = 1e-9
# The seed mode (linear model, in-sample, upper side, per-axis percentiles): the straightforward
# path below is the seed's policy, written from DESIGN.md.
POLICIES = {
    "default": dict(SEED_POLICY),
    "trimmed": {
        **SEED_POLICY,
        "trim_top_ratio": 0.05,
        "min_pos_for_trim": 100,
        "alert_quantile": 0.9,
    },
}


def _samples(n: int = 4000) -> pd.DataFrame:
    """~1.9 s sampling with jitter; trend + slowly varying (AR(1)) noise, so residuals stay
    above a threshold for several samples; sustained excursions; shared idle stretches (all
    axes 0); NULLs."""
    rng = np.random.default_rng(11)
    ts = T0 + pd.to_timedelta(np.cumsum(rng.integers(1850, 1950, n)), unit="ms")
    t = np.arange(n) * 1.9
    frame = pd.DataFrame({"ts": ts})
    idle = (np.arange(n) % 500) < 25
    for k, axis in enumerate(AXES, start=1):
        noise = rng.normal(0, 0.3 * k, n)
        for i in range(1, n):
            noise[i] += 0.85 * noise[i - 1]
        values = 5.0 * k + 0.0004 * k * t + noise
        for start in rng.integers(0, n - 40, 12):
            values[start : start + rng.integers(4, 30)] += 3.0 * k
        values[idle] = 0.0
        values[rng.choice(n, 15, replace=False)] = np.nan
        frame[axis] = values
    return frame


def _store(db: Db, layout: str) -> str:
    frame = _samples()
    name = db.table(f"samples_{layout}")
    if layout == "wide":
        types = {"ts": sa.DateTime(timezone=True), **{axis: sa.Float(53) for axis in AXES}}
        write_chunks(db.engine, db.target, name, types, [frame])
        return name
    rows = frame.melt(id_vars="ts", var_name="axis", value_name="value")
    rows["axis_id"] = rows.pop("axis").str.removeprefix("axis").astype(int)
    # Some NULL values are stored as rows with value NULL, others as missing rows.
    rows = rows.drop(index=rows.index[rows["value"].isna()][::2])
    types = {"ts": sa.DateTime(timezone=True), "axis_id": sa.Integer(), "value": sa.Float(53)}
    write_chunks(db.engine, db.target, name, types, [rows[["ts", "axis_id", "value"]]])
    return name


def _fast(db: Db, table: str, layout: str, policy: dict[str, Any], tmp_path: Path) -> Any:
    axes: list[Any] = AXES if layout == "wide" else [1, 2, 3]
    config = {
        "data": {"table": table, "axes": axes},
        "model": {"type": "linear", "machine": "none"},
        "thresholds": policy,
        "registry": {"root_dir": str(tmp_path / "registry")},
        "plots": {"dir": str(tmp_path / "plots"), "max_points": 400},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return run_training(load_config(path))


def _read(db: Db, table: str, layout: str) -> pd.DataFrame:
    with db.engine.connect() as conn:
        if layout == "wide":
            query = f"SELECT ts, {', '.join(AXES)} FROM {table} ORDER BY ts"
            return pd.read_sql(sa.text(query), conn)
        rows = pd.read_sql(sa.text(f"SELECT ts, axis_id, value FROM {table} ORDER BY ts"), conn)
    wide = rows.pivot(index="ts", columns="axis_id", values="value")
    wide.columns = [f"axis{k}" for k in wide.columns]
    return wide.reset_index()


def _run_lengths(above: np.ndarray) -> list[int]:
    runs, current = [], 0
    for flag in above:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def _steps(runs: list[int], quantile: float, seconds: float, dt_seconds: float) -> int:
    # DESIGN.md: ceil(seconds / dt), raised to the quantile of the observed runs when longer;
    # 1e-9 absorbs float noise (5.0000000001 steps is 5), as the policy documents.
    steps = max(1, math.ceil(seconds / dt_seconds - 1e-9))
    if runs:
        steps = max(steps, math.ceil(float(np.quantile(runs, quantile)) - 1e-9))
    return steps


def _straightforward(
    db: Db, table: str, layout: str, policy: ThresholdPolicy
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    frame = _read(db, table, layout)
    ts = pd.to_datetime(frame["ts"], utc=True)
    time_s = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    dt_seconds = round(float(np.median(np.diff(time_s))), 6)
    metrics, thresholds = {}, {}
    for axis in AXES:
        values = frame[axis].to_numpy(dtype=float)
        usable = ~np.isnan(values) & (values != 0.0)
        model = LinearRegression().fit(time_s[usable].reshape(-1, 1), values[usable])
        predicted = model.predict(time_s.reshape(-1, 1))
        residuals = np.where(usable, values - predicted, np.nan)
        metrics[axis] = {
            "n": int(usable.sum()),
            "r2": r2_score(values[usable], predicted[usable]),
            "mae": mean_absolute_error(values[usable], predicted[usable]),
            "rmse": math.sqrt(mean_squared_error(values[usable], predicted[usable])),
        }
        positives = np.sort(residuals[usable][residuals[usable] > 0])
        trimmed = 0
        if policy.trim_top_ratio > 0 and positives.size >= policy.min_pos_for_trim:
            trimmed = math.floor(policy.trim_top_ratio * positives.size + 1e-9)
        kept = positives[: positives.size - trimmed]
        minc = float(np.percentile(kept, policy.minc_percentile))
        maxc = float(np.percentile(kept, policy.maxc_percentile))
        alert_runs = _run_lengths(residuals > minc)
        error_runs = _run_lengths(residuals > maxc)
        thresholds[axis] = {
            "MinC": minc,
            "MaxC": maxc,
            "T_long_steps": _steps(
                alert_runs, policy.alert_quantile, policy.alert_seconds_default, dt_seconds
            ),
            "T_short_steps": _steps(
                error_runs, policy.error_quantile, policy.error_seconds_default, dt_seconds
            ),
            "dt_seconds": dt_seconds,
            "counts": {
                "residuals": int(usable.sum()),
                "positives": int(positives.size),
                "trimmed": trimmed,
                "alert_runs": len(alert_runs),
                "error_runs": len(error_runs),
            },
        }
    return metrics, thresholds


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_fast_path_equals_straightforward_path(
    pg_db: Db,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    policy_name: str,
) -> None:
    monkeypatch.setenv("DB_URL", pg_db.url)
    table = _store(pg_db, layout)
    policy = POLICIES[policy_name]

    fast = _fast(pg_db, table, layout, policy, tmp_path)
    expected_metrics, expected_thresholds = _straightforward(
        pg_db, table, layout, ThresholdPolicy(**policy)
    )

    assert list(fast.timings) == [step.name for step in STEPS]
    assert fast.axes == AXES
    got_metrics = fast.metrics.set_index("axis").to_dict(orient="index")
    for axis in AXES:
        got, expected = got_metrics[axis], expected_metrics[axis]
        assert got["n"] == expected["n"]
        for key in ("r2", "mae", "rmse"):
            assert got[key] == pytest.approx(expected[key], rel=RELATIVE, abs=0), (axis, key)
        record, reference = fast.thresholds[axis], expected_thresholds[axis]
        for key in ("MinC", "MaxC"):
            assert record[key] == pytest.approx(reference[key], rel=RELATIVE, abs=0), (axis, key)
        for key in ("T_long_steps", "T_short_steps", "dt_seconds", "counts"):
            assert record[key] == reference[key], (axis, key)
    # The data exercise run lengths longer than the default steps (3 and 2 samples).
    assert all(fast.thresholds[axis]["T_long_steps"] > 3 for axis in AXES)
    assert any(fast.thresholds[axis]["T_short_steps"] > 2 for axis in AXES)
    if policy.get("trim_top_ratio"):
        assert all(fast.thresholds[axis]["counts"]["trimmed"] > 0 for axis in AXES)
