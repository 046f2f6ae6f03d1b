"""Drift in score runs, on SQLite and PostgreSQL: the state table, drift events, continuation
across window cuts, a version change, and ``orchestrate.py drift``.

The hand-published flat version predicts 1.0 (residual = value - 1) with drift baselines
centre 0, sigma 1, blocks of 10 s (10 samples at 1 s), k = 0.5, h = 5. Axis ``a`` shifts by
1 sigma at sample 50 (block 5): its CUSUM grows 0.5 a block and exceeds 5 in the 11th shifted
block, block 15, whose first sample is 150.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
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
from Scoring import read_drift_state

DRIFT = {
    "parameters": {
        "block_seconds": 10.0,
        "cusum_k": 0.5,
        "cusum_h": 5.0,
        "ewma_lambda": 0.2,
        "ewma_l": 3.0,
        "clip": 3.0,
        "isolate_ratio": None,
    },
    "axes": {
        "a": {"center": 0.0, "scale": 1.0, "samples": 100},
        "b": {"center": 0.0, "scale": 1.0, "samples": 100},
    },
}
SHIFTED = {"a": [0.0] * 50 + [1.0] * 200, "b": [0.0] * 120 + [None] * 10 + [0.0] * 120}
"""250 samples: a at +1 sigma from sample 50 (never beyond MinC = 1), b idle for 10."""


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"], drift=DRIFT)
    append_samples(any_db, "s", SHIFTED)
    return lambda *overrides: loaded_config(any_db, tmp_path, *overrides)


def _drift_events(db: Db, table: str) -> pd.DataFrame:
    events = stored_events(db, table)
    columns = ["axis", "start_ts", "end_ts", "samples", "side", "threshold", "peak_residual"]
    return events.loc[events["severity"] == "drift", columns].reset_index(drop=True)


def _state(db: Db, table: str) -> pd.DataFrame:
    found = read_drift_state(db.engine, db.table(table), source_table=db.table("s"))
    return found.drop(columns=["updated_at"])


def test_a_one_sigma_shift_drifts_from_its_eleventh_block(any_db: Db, project) -> None:
    report = run_scoring(project(), start=T0.to_pydatetime(), end=ts(250).to_pydatetime())

    state = _state(any_db, "events_drift").set_index("axis")
    assert bool(state.loc["a", "is_drifting"]) and state.loc["a", "drift_direction"] == "up"
    assert state.loc["a", "drifting_since"] == ts(150)
    assert state.loc["a", "cusum_pos"] == pytest.approx(0.5 * 19)  # blocks 5-23; 24 is open
    assert not bool(state.loc["b", "is_drifting"]) and state.loc["b", "cusum_pos"] == 0.0
    events = _drift_events(any_db, "events")
    assert events.to_dict("records") == [
        {
            "axis": "a",
            "start_ts": ts(150),
            "end_ts": ts(239),
            "samples": 90,
            "side": "upper",
            "threshold": 5.0,
            "peak_residual": 1.0,
        }
    ]
    assert report.drift == {
        "started": 1,
        "drifting": {"a": {"direction": "up", "since": ts(150).isoformat()}},
    }
    assert all(c == {"alert": 0, "error": 0} for c in report.counts.values())
    assert report.retrain == f"a drifts up since {ts(150).isoformat()}"


def test_back_to_back_windows_give_the_state_and_events_of_their_union(any_db: Db, project) -> None:
    run_scoring(project(), start=T0.to_pydatetime(), end=ts(250).to_pydatetime())
    cut = project(f"events.table={any_db.table('cut')}")
    for lo, hi in ((0, 37), (37, 151), (151, 155)):
        run_scoring(cut, start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime())
    run_scoring(cut)  # the rest, continuing from the stored state

    union, pieces = _state(any_db, "events_drift"), _state(any_db, "cut_drift")
    pd.testing.assert_frame_equal(
        pieces.drop(columns=["cusum_pos", "cusum_neg", "ewma_value"]),
        union.drop(columns=["cusum_pos", "cusum_neg", "ewma_value"]),
    )
    for column in ("cusum_pos", "cusum_neg", "ewma_value"):
        assert pieces[column].tolist() == pytest.approx(union[column].tolist(), abs=1e-12)
    pd.testing.assert_frame_equal(_drift_events(any_db, "cut"), _drift_events(any_db, "events"))


def test_a_later_run_extends_the_open_drift_and_rescoring_changes_nothing(
    any_db: Db, project
) -> None:
    loaded = project()
    run_scoring(loaded, start=T0.to_pydatetime(), end=ts(250).to_pydatetime())
    run_scoring(loaded, start=ts(100).to_pydatetime(), end=ts(250).to_pydatetime())  # again
    assert _drift_events(any_db, "events")["samples"].tolist() == [90]

    append_samples(any_db, "s", {"a": [0.0] * 50, "b": [0.0] * 50}, first=250)
    report = run_scoring(loaded)

    # Block 24 (ones) closes, blocks 25-28 (zeros) pull S+ from 10 down to 8: still drifting.
    (event,) = _drift_events(any_db, "events").to_dict("records")
    assert (event["start_ts"], event["end_ts"], event["samples"]) == (ts(150), ts(289), 140)
    assert report.drift["started"] == 0
    state = _state(any_db, "events_drift").set_index("axis")
    assert state.loc["a", "cusum_pos"] == pytest.approx(8.0)


def test_a_new_version_restarts_the_charts(any_db: Db, project, tmp_path: Path) -> None:
    loaded = project()
    run_scoring(loaded, start=T0.to_pydatetime(), end=ts(200).to_pydatetime())
    publish_linear_version(tmp_path / "registry", ["a", "b"], drift=DRIFT)  # v2

    run_scoring(loaded)

    state = _state(any_db, "events_drift").set_index("axis")
    assert set(state["model_version"]) == {"v2"}
    # v2 folds samples 200-249 from zero: blocks 20-23 closed, S+ = 4 * 0.5.
    assert state.loc["a", "cusum_pos"] == pytest.approx(2.0)
    assert not bool(state.loc["a", "is_drifting"])
    # v1's drift ends with its last closed block (19, still open, went with v1's charts).
    assert _drift_events(any_db, "events")["end_ts"].tolist() == [ts(189)]


def test_drift_off_writes_no_state(any_db: Db, project) -> None:
    report = run_scoring(project("drift.enabled=false"), start=T0.to_pydatetime())
    assert report.drift == {}
    assert not sa.inspect(any_db.engine).has_table("events_drift", schema=any_db.schema)
    assert _drift_events(any_db, "events").empty


def test_drift_command_lists_the_drifting_axis(sqlite_db: Db, tmp_path: Path) -> None:
    config = make_project(tmp_path, "data: {table: s, axes: [a, b]}\n")
    publish_linear_version(tmp_path / "registry", ["a", "b"], drift=DRIFT)
    append_samples(sqlite_db, "s", SHIFTED)
    before = run_cli("orchestrate.py", "drift", config=config, db_url=sqlite_db.url)
    assert before.code == 0, before.stderr
    assert "no drift state in anomaly_events_drift yet" in before.stdout
    window = ["--start", T0.isoformat(), "--end", ts(250).isoformat()]
    assert (
        run_cli("orchestrate.py", "score", *window, config=config, db_url=sqlite_db.url).code == 0
    )

    shown = run_cli("orchestrate.py", "drift", "--json", config=config, db_url=sqlite_db.url)

    assert shown.code == 0, shown.stderr
    payload = shown.json()
    assert payload["status"] == {
        "code": "ok",
        "detail": "1 of 2 axes drifting (anomaly_events_drift)",
    }
    first = payload["axes"][0]
    assert (first["axis"], first["is_drifting"], first["drift_direction"]) == ("a", True, "up")
    assert pd.Timestamp(first["drifting_since"]) == ts(150)
    text = run_cli("orchestrate.py", "drift", config=config, db_url=sqlite_db.url).stdout
    assert "1 of 2 axes drifting" in text


@pytest.fixture
def ramp(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """400 samples whose residual rises 0.001 a second (below MinC = 1: no alarm)."""
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"], drift=DRIFT)
    append_samples(any_db, "s", {"a": [0.001 * i for i in range(400)], "b": [0.0] * 400})
    return lambda *overrides: loaded_config(
        any_db, tmp_path, "drift.trend_min_blocks=12", *overrides
    )


def test_time_to_threshold_of_a_ramp_in_one_run_and_across_runs(any_db: Db, ramp) -> None:
    whole = run_scoring(ramp(), start=T0.to_pydatetime(), end=ts(400).to_pydatetime())
    # Block k (samples 10k..10k+9) has mean 0.001 (10k + 4.5) at its centre 10k + 5 s: a line
    # of slope 0.001 per second (86.4 a day); the newest block's level is 0.3945, MaxC is 2.
    found = whole.trend["a"]
    assert found["slope_per_day"] == pytest.approx(86.4)
    assert found["days"] == pytest.approx((2.0 - 0.3945) / 86.4)
    assert set(whole.trend) == {"a"}  # b has no trend

    cut = ramp(f"events.table={any_db.table('cut')}")
    for lo, hi in ((0, 137), (137, 250)):
        run_scoring(cut, start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime())
    last = run_scoring(cut)  # the rest; earlier runs' levels come from the levels table
    assert last.trend["a"]["days"] == pytest.approx(found["days"])
    assert last.trend["a"]["blocks"] == found["blocks"] == 40


def test_drift_state_reads_no_direction_as_none_beside_a_drifting_axis(tmp_path: Path) -> None:
    """A NULL direction next to a drifting axis's "up", stored and read back: None in the
    frame and the JSON, "-" in the table, never "nan"."""
    from Orchestration.drift import format_drift_state
    from Scoring.drift.store import drift_table

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'drift.sqlite'}")
    state = drift_table("events_drift")
    with engine.begin() as conn:
        state.create(conn)
        conn.execute(
            state.insert(),
            [
                {
                    "source_table": "robot",
                    "asset": "",
                    "axis": axis,
                    "model_version": "v1",
                    "is_drifting": drifting,
                    "drift_direction": direction,
                    "drifting_since": since,
                    "cusum_pos": 9.5 if drifting else 0.0,
                    "cusum_neg": 0.0,
                    "ewma_value": 0.1,
                    "last_sample_s": 0.0,
                    "open_sum": 0.0,
                    "open_count": 0,
                    "run_id": "r",
                    "updated_at": pd.Timestamp("2026-01-12", tz="UTC").to_pydatetime(),
                }
                for axis, drifting, direction, since in (
                    ("axis1", False, None, None),
                    ("axis2", True, "up", pd.Timestamp("2026-01-11 18:00", tz="UTC")),
                )
            ],
        )
    read = read_drift_state(engine, "events_drift", source_table="robot")
    assert read["drift_direction"].tolist() == [None, "up"]
    payload, text = format_drift_state(read, "events_drift")
    assert [r["drift_direction"] for r in payload["axes"]] == ["up", None]
    assert "nan" not in text
    steady = next(line for line in text.splitlines() if " axis1 " in line)
    assert steady.split()[2:5] == ["no", "-", "-"]
    assert text.endswith("1 of 2 axes drifting")
