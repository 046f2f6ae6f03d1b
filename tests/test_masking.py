"""Incident masking: training leaves out known incidents (labels and confirmed events, widened
by the margin) and maintenance windows, exactly those rows, and records it in meta.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from clitools import make_project
from conftest import Db
from scoring_helpers import ts

from Database import write_chunks
from Labels import FeedbackStore, LabelsError, training_mask
from Orchestration import ConfigError, load_config, run_training

S = pd.Timedelta(seconds=1)


def _windows(*spans: tuple[int, int, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_ts": [ts(a) for a, _, _ in spans],
            "end_ts": [ts(b) for _, b, _ in spans],
            "axis": pd.Series([axis for _, _, axis in spans], dtype=object),
        }
    )


def test_the_mask_covers_incidents_widened_by_the_margin_and_maintenance_as_it_is() -> None:
    times = pd.Series([ts(i) for i in range(20)])

    mask = training_mask(
        times,
        ["a", "b"],
        labels=_windows((2, 3, "a")),
        confirmed=_windows((10, 10, "*")),  # a confirmed machine-channel event
        maintenance=_windows((15, 16, "b")),  # the axis of a maintenance window is ignored
        margin=S,
    )

    assert np.flatnonzero(mask.incidents["*"]).tolist() == [1, 2, 3, 4, 9, 10, 11]
    assert np.flatnonzero(mask.incidents["a"]).tolist() == [1, 2, 3, 4, 9, 10, 11]
    assert np.flatnonzero(mask.incidents["b"]).tolist() == [9, 10, 11]
    assert np.flatnonzero(mask.maintenance).tolist() == [15, 16]
    assert np.flatnonzero(mask.excluded).tolist() == [1, 2, 3, 4, 9, 10, 11, 15, 16]
    assert mask.summary() == {
        "windows": {"labels": 1, "confirmed": 1, "maintenance": 1},
        "margin_s": 1.0,
        "rows": 20,
        "masked_incident_rows": 7,
        "masked_maintenance_rows": 2,
        "masked_rows": 9,
    }


def test_no_known_window_masks_nothing() -> None:
    mask = training_mask(pd.Series([ts(i) for i in range(5)]), ["a"])
    assert not mask.excluded.any() and mask.summary()["masked_rows"] == 0


ROWS = 200
LABELLED = (20, 29)  # labels table, axis a, widened by 5 s: rows 15-34
CONFIRMED = (100, 104)  # a confirmed event on axis b, widened: rows 95-109
SERVICE = (150, 159)  # a maintenance window, not widened


def _project(db: Db, folder: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str):
    """Samples a = 0.5 t + 3 and b = 7 with noise, wild inside the three known windows (before
    their margins widen them); the windows in their tables; a confirmed verdict."""
    rng = np.random.default_rng(3)
    a = 0.5 * np.arange(ROWS) + 3.0 + rng.normal(0, 0.2, ROWS)
    b = 7.0 + rng.normal(0, 0.2, ROWS)
    for first, last in (LABELLED, CONFIRMED, SERVICE):
        a[first : last + 1] += 500.0
        b[first : last + 1] -= 300.0
    frame = pd.DataFrame({"ts": [ts(i) for i in range(ROWS)], "a": a, "b": b})
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(db.engine, db.target, db.table("s"), columns, [frame])
    labels = _windows((*LABELLED, "a")).assign(kind="spike", severity="high")
    service = _windows((*SERVICE, None))
    for name, windows in (("failures", labels), ("service", service)):
        windows.to_sql(name, db.engine, schema=db.schema, index=False)
    event = pd.DataFrame(
        {
            "id": [1],
            "source_table": [db.table("s")],
            "asset": [""],
            "axis": ["b"],
            "severity": ["alert"],
            "start_ts": [ts(CONFIRMED[0])],
            "end_ts": [ts(CONFIRMED[1])],
            "model_version": ["v0"],
        }
    )
    FeedbackStore(db.engine, db.target, db.table("events")).label(event, "confirmed")
    monkeypatch.setenv("DB_URL", db.url)
    return load_config(
        make_project(folder),
        [
            f"data.table={db.table('s')}",
            "data.axes=[a, b]",
            f"events.table={db.table('events')}",
            f"labels.table={db.table('failures')}",
            f"labels.calendar_table={db.table('service')}",
            "labels.mask_margin=5s",
            "model.type=linear",
            "model.machine=none",
            "thresholds.calibration=in_sample",
            "plots.enabled=false",
            *overrides,
        ],
    )


def _excluded() -> np.ndarray:
    rows = np.zeros(ROWS, dtype=bool)
    for first, last in ((LABELLED[0] - 5, LABELLED[1] + 5), (95, 109), SERVICE):
        rows[first : last + 1] = True
    return rows


def test_training_leaves_out_exactly_the_known_windows_and_says_so_in_meta(
    any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_training(_project(any_db, tmp_path, monkeypatch))

    excluded = _excluded()
    assert result.masked_rows == int(excluded.sum()) == 20 + 15 + 10
    # Fitted on exactly the other rows: their count, and their least-squares line.
    assert {axis: c["rows_fitted"] for axis, c in result.fit_report.items()} == {
        "a": ROWS - 45,
        "b": ROWS - 45,
    }
    frame = pd.read_sql_table("s", any_db.engine, schema=any_db.schema)
    slope, _ = np.polyfit(np.arange(ROWS)[~excluded], frame["a"].to_numpy()[~excluded], 1)
    models = json.loads((result.artifact_dir / "models.json").read_text())
    assert _slope(models, "a") == pytest.approx(slope, rel=1e-9)
    meta = yaml.safe_load((result.artifact_dir / "meta.yaml").read_text())
    assert meta["labels"] == {
        "table": any_db.table("failures"),
        "calendar_table": any_db.table("service"),
        "masked": True,
        "windows": {"labels": 1, "confirmed": 1, "maintenance": 1},
        "margin_s": 5.0,
        "rows": ROWS,
        "masked_incident_rows": 35,
        "masked_maintenance_rows": 10,
        "masked_rows": 45,
    }


def _slope(models: dict, axis: str) -> float:
    return float(models["models"][axis]["coef"])


def test_without_masking_every_row_is_fitted_but_the_windows_are_counted(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _project(sqlite_db, tmp_path, monkeypatch, "labels.mask_training=false")
    result = run_training(loaded)
    assert result.fit_report["a"]["rows_fitted"] == ROWS
    meta = yaml.safe_load((result.artifact_dir / "meta.yaml").read_text())
    assert (meta["labels"]["masked"], meta["labels"]["masked_rows"]) == (False, 45)


def test_a_missing_calendar_table_names_its_key(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _project(sqlite_db, tmp_path, monkeypatch, "labels.calendar_table=nope")
    with pytest.raises(
        LabelsError, match=r"calendar table 'nope' does not exist .*labels.calendar_table: null"
    ):
        run_training(loaded)


@pytest.mark.parametrize("value", ["-5m", "soon"])
def test_a_bad_margin_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"labels.mask_margin: .*duration such as 0s, 10m"):
        load_config(make_project(tmp_path), [f"labels.mask_margin={value}"])
