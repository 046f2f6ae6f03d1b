"""Values at the edges of float64: NaN/infinite epoch times, and axes near ±1.8e308.

A NaN time is refused naming the table, the column, how many rows and the fix. Huge finite
values are values: the profile reports them exactly, without a NumPy warning (the suite turns
warnings into errors); training refuses them naming the axis and why.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db

from DataExtractionAnalysis import DataConfig, ExtractionError, extract_window, profile
from DataPreparation import FIT_VALUE_LIMIT, PreparationError, PrepConfig, prepare, validate_frame

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")


@pytest.mark.postgres
@pytest.mark.parametrize("fast_path", [True, False], ids=["adbc", "sqlalchemy"])
def test_a_nan_epoch_time_names_table_column_rows_and_fix(pg_db: Db, fast_path: bool) -> None:
    table = pg_db.table("epochs")
    with pg_db.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (t double precision, axis1 double precision)"))
        conn.execute(
            sa.text(
                f"INSERT INTO {table} VALUES (1e9, 1), (1e9 + 2, 2), ('NaN', 3), "
                "('NaN', 4), ('Infinity', 5), (NULL, 6)"
            )
        )
    config = DataConfig(table=table, time_col="t", axes=["axis1"])
    with pytest.raises(ExtractionError, match="NaN or infinite instead of epoch") as caught:
        extract_window(pg_db.engine, pg_db.target, config, fast_path=fast_path)
    assert str(caught.value) == (
        f"data.time_col 't' of table '{table}' holds 3 rows whose time is NaN or infinite "
        "instead of epoch seconds; give those rows their real time, or set it to NULL (rows "
        "without a time are skipped) or delete them"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_frame_with_an_unusable_epoch_time_is_refused(bad: float) -> None:
    frame = pd.DataFrame({"ts": [1e9, 1e9 + 2, bad, 1e9 + 6], "a": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(PreparationError, match="without a usable time") as caught:
        validate_frame(frame, ["a"])
    assert str(caught.value) == (
        "ts has 1 samples without a usable time (missing, NaN or infinite); every sample needs "
        "one: drop those rows or fix them in the source"
    )


@pytest.mark.parametrize("rows", [4, 100_000], ids=["one-block", "many-blocks"])
def test_huge_finite_values_are_profiled_exactly(rows: int) -> None:
    huge = np.where(np.arange(rows) % 2 == 0, 1e308, -1e308)  # mean 0, std 1e308*sqrt(n/(n-1))
    frame = pd.DataFrame({"ts": 1e9 + 2.0 * np.arange(rows), "a": huge, "b": np.ones(rows)})
    axes = profile(frame, ["a", "b"]).to_dict()["axes"]
    assert axes["a"] == {
        "count": rows,
        "nan": 0,
        "zero_share": 0.0,
        "min": -1e308,
        "max": 1e308,
        "mean": 0.0,
        "std": pytest.approx(1e308 * math.sqrt(rows / (rows - 1)), rel=1e-12),
    }
    assert axes["b"]["mean"] == 1.0 and axes["b"]["std"] == 0.0


def test_a_std_beyond_float64_is_missing_with_a_warning_naming_the_axis(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = pd.DataFrame({"ts": [0.0, 1.0, 2.0], "big": [1.7e308, -1.7e308, 1.7e308]})
    with caplog.at_level(logging.WARNING):
        stats = profile(frame, ["big"]).to_dict()["axes"]["big"]
    assert stats["mean"] == pytest.approx(1.7e308 / 3, rel=1e-12)
    assert stats["std"] is None  # sqrt(1.7e308² · 4/3) ≈ 1.96e308 does not fit a float64
    assert caplog.messages == [
        "axis 'big': the standard deviation of values up to 1.7e+308 exceeds the float64 range "
        "(~1.8e308); it is reported as missing"
    ]


def test_training_refuses_values_too_large_to_fit_naming_the_axis_and_why() -> None:
    ts = pd.Series(T0 + pd.to_timedelta([0, 2, 4, 6], unit="s"))
    frame = pd.DataFrame({"ts": ts, "a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, -1e308, 2.0, 1e200]})
    with pytest.raises(PreparationError, match="values beyond ±1e\\+150") as caught:
        prepare(frame, ["a", "b"], PrepConfig(), dt_seconds=2.0)
    assert str(caught.value) == (
        "axis 'b' holds 2 values beyond ±1e+150 (largest 1e+308, first at 2026-01-05 "
        "00:00:02+00:00): squares and sums of values this large overflow float64, so no "
        "baseline can be fitted; such values are sentinels or corrupt readings: clean the "
        "source or store NULL instead"
    )
    at_limit = frame.assign(b=[1.0, -FIT_VALUE_LIMIT, 2.0, FIT_VALUE_LIMIT])
    prepared = prepare(at_limit, ["a", "b"], PrepConfig(), dt_seconds=2.0)
    assert prepared.frame["b"].tolist() == [1.0, -1e150, 2.0, 1e150]
    validate_frame(frame, ["a", "b"])  # scoring: a huge value is a value to judge, not refuse


def test_training_on_huge_values_exits_3_with_the_reason_and_no_numpy_warning(
    tmp_path: Path,
) -> None:
    rows = 200
    frame = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta(2 * np.arange(rows), unit="s"),
            "axis1": np.linspace(1.0, 2.0, rows),
            "axis2": np.where(np.arange(rows) % 2 == 0, 1e308, -1e308),
        }
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plant.sqlite'}")
    frame.to_sql("plant", engine, index=False, dtype={"ts": sa.DateTime(timezone=True)})
    engine.dispose()
    config = make_project(tmp_path, "data: {table: plant, axes: [axis1, axis2]}\n")
    run = run_cli(
        "main.py", "--json", config=config, db_url=f"sqlite:///{tmp_path / 'plant.sqlite'}"
    )
    assert run.code == 3, run.stderr
    assert run.json()["status"]["detail"].startswith(
        "axis 'axis2' holds 200 values beyond ±1e+150 (largest 1e+308, first at 2026-01-05 "
        "00:00:00+00:00): squares and sums of values this large overflow float64"
    )
    assert "Warning" not in run.stderr and "overflow encountered" not in run.stderr
    assert "idle or missing" not in run.stderr
    assert not (tmp_path / "registry").exists()
