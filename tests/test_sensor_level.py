"""Machine off versus dead sensor: every axis at 0 is idle, one axis at 0 or missing while
another runs is the sensor level, and its runs become sensor events (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Db
from scoring_helpers import (
    T0,
    append_samples,
    loaded_config,
    publish_linear_version,
    stored_events,
    ts,
    use_database,
)

from Orchestration.scoring import run_scoring
from Scoring import Level, lookahead_samples, lookback_samples, mark_sensor_faults, score_frame

RULE = {"MinC": 1.0, "MaxC": 2.0, "T_long_steps": 2, "T_short_steps": 2, "dt_seconds": 1.0}


def test_a_dead_axis_is_sensor_only_while_another_axis_runs_long_enough() -> None:
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    codes = [a.astype(np.int8), b.astype(np.int8)]
    mark_sensor_faults(codes, [a, b], steps=2)
    s, o, i = Level.SENSOR, Level.OK, Level.IDLE
    assert codes[1].tolist() == [o, s, s, s, o, i, i, i, i, i]  # row 5: a run of one
    assert codes[0].tolist() == [o, o, o, o, o, o, i, i, i, i]  # b never runs while a is 0
    one = [a.astype(np.int8)]
    mark_sensor_faults(one, [a], steps=1)
    assert one[0].tolist() == a.astype(np.int8).tolist()  # one axis: no other to tell


def test_score_frame_levels_and_sensor_events() -> None:
    n = 12
    frame = pd.DataFrame(
        {
            "ts": np.arange(float(n)),
            "a": [1.0] * 10 + [0.0] * 2,
            "b": [1.0, 0.0, 0.0, 0.0, np.nan, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            "a_res": 0.0,
            "b_res": 0.0,
        }
    )
    result = score_frame(frame, None, {"a": RULE, "b": RULE}, sensor_steps=3)
    assert result.frame["b_level"].tolist() == (
        ["ok"] + ["sensor"] * 4 + ["ok", "ok", "idle", "ok", "ok", "idle", "idle"]
    )
    assert result.frame["level"].tolist()[-2:] == ["idle", "idle"]  # the machine at rest
    events = result.events()
    assert events[["axis", "severity", "start", "end", "samples"]].to_dict("records") == [
        {"axis": "b", "severity": "sensor", "start": 1.0, "end": 4.0, "samples": 4}
    ]
    plain = score_frame(frame, None, {"a": RULE, "b": RULE})
    assert "sensor" not in set(plain.frame["b_level"])


def test_context_covers_a_sensor_fault() -> None:
    assert lookback_samples({"a": RULE}, sensor_steps=60) == 59
    assert lookahead_samples({"a": RULE}, sensor_steps=60) == 59
    assert lookback_samples({"a": RULE}) == 1


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    # 0-9 both run; 10-19 b dead (a runs); 20-29 both 0 (machine off); 30-39 both run
    residuals = {
        "a": [0.0] * 20 + [None] * 10 + [0.0] * 10,
        "b": [0.0] * 10 + [None] * 20 + [0.0] * 10,
    }
    append_samples(any_db, "s", residuals)
    return lambda *overrides: loaded_config(any_db, tmp_path, "scoring.sensor_steps=5", *overrides)


def _sensor_rows(db: Db, table: str = "events") -> list[tuple]:
    events = stored_events(db, table)
    found = events[events["severity"] == "sensor"]
    return list(found[["axis", "start_ts", "end_ts", "samples"]].itertuples(index=False, name=None))


def test_a_dead_sensor_during_motion_is_an_event_and_a_stop_is_not(any_db: Db, project) -> None:
    report = run_scoring(project(), start=T0.to_pydatetime(), end=ts(40).to_pydatetime())
    assert _sensor_rows(any_db) == [("b", ts(10), ts(19), 10)]
    assert report.sensor == {"b": 1}
    assert all(c == {"alert": 0, "error": 0} for c in report.counts.values())


def test_a_window_cut_inside_the_fault_gives_one_event(any_db: Db, project) -> None:
    cut = project(f"events.table={any_db.table('cut')}")
    for lo, hi in ((0, 13), (13, 17), (17, 40)):
        run_scoring(cut, start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime())
    assert _sensor_rows(any_db, "cut") == [("b", ts(10), ts(19), 10)]


def test_a_configured_off_condition_makes_every_axis_idle() -> None:
    frame = pd.DataFrame(
        {
            "ts": np.arange(8.0),
            "a": [5.0, 5.0, 0.2, 0.2, 0.2, 0.2, 5.0, 5.0],  # the drive: off below 0.5
            "b": [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
            "a_res": [0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 0.0, 0.0],  # no alarm while off
            "b_res": 0.0,
        }
    )
    off = np.abs(frame["a"].to_numpy()) <= 0.5
    result = score_frame(frame, None, {"a": RULE, "b": RULE}, sensor_steps=2, machine_off=off)
    assert result.frame["level"].tolist() == ["ok"] * 2 + ["idle"] * 4 + ["ok"] * 2
    assert result.events().empty
    plain = score_frame(frame, None, {"a": RULE, "b": RULE}, sensor_steps=2)
    assert set(plain.frame["b_level"][2:6]) == {"sensor"}  # without it: a runs, b is dead


def test_off_axis_must_be_a_configured_axis(any_db: Db, project) -> None:
    from Scoring import ScoringInputError

    with pytest.raises(ScoringInputError, match=r"scoring\.off_axis 'zz' is not one of data\.axes"):
        run_scoring(project("scoring.off_axis=zz"), start=T0.to_pydatetime())


def test_off_axis_in_a_score_run(any_db: Db, project) -> None:
    # a reads 0 (None) for 20-29 together with b: off by a's value, so b's 10-19 is still a
    # sensor fault (a runs there), and 20-29 is idle either way.
    run_scoring(
        project("scoring.off_axis=a", "scoring.off_below=0.5"),
        start=T0.to_pydatetime(),
        end=ts(40).to_pydatetime(),
    )
    assert _sensor_rows(any_db) == [("b", ts(10), ts(19), 10)]
