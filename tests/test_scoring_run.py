"""Scoring runs against real SQLite and PostgreSQL: events, idempotency, continuation, statuses.

A hand-published version makes every answer exact: a flat model (value - 1 is the residual),
MinC = 1, MaxC = 2, T_long_steps = T_short_steps = 2, so a look-back of one sample.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db

from Database import write_chunks
from ModelRegistry import ModelRegistry
from ModelSelection import select_model
from ModelTraining import AxisModelSet
from Orchestration import load_config
from Orchestration.scoring import run_scoring
from Scoring import EventStore

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")


def _ts(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=i)


def publish_flat_version(
    root: Path,
    axes: list[str],
    *,
    tag: str = "auto",
    t_long: int = 2,
    t_short: int = 2,
    epoch: bool = False,
) -> str:
    """A version predicting exactly 1.0 everywhere, trained on data ending before T0."""
    train = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], **{a: [1.0, 1.0, 1.0] for a in axes}})
    models = AxisModelSet(select_model("linear"), axes).fit(train)
    origin = T0 - pd.Timedelta(hours=1)
    rule = {
        "MinC": 1.0,
        "MaxC": 2.0,
        "T_long_steps": t_long,
        "T_short_steps": t_short,
        "dt_seconds": 1.0,
    }
    files = {
        "models.json": json.dumps(models.to_dict()).encode(),
        "thresholds.json": json.dumps({a: rule for a in axes}).encode(),
        "prep_stats.json": json.dumps(
            {"t0": origin.timestamp(), "t0_kind": "epoch", "dt_seconds": 1.0}
            if epoch
            else {"t0": origin.isoformat(), "t0_kind": "datetime", "dt_seconds": 1.0}
        ).encode(),
    }
    meta = {
        "data": {
            "rows": 3,
            "start": (T0 - pd.Timedelta(hours=1)).isoformat(),
            "end": (T0 - pd.Timedelta(seconds=1)).isoformat(),
        },
        "axes": axes,
    }
    return ModelRegistry(root).publish(files, meta=meta, version_tag=tag, run_id="test").version


def _append(db: Db, table: str, residuals: dict[str, list[float]], first: int = 0) -> None:
    """Rows at 1 s spacing from ``first``; each axis value = 1 + residual (0 -> idle value 0)."""
    n = len(next(iter(residuals.values())))
    frame = pd.DataFrame({"ts": [_ts(first + i) for i in range(n)]})
    for axis, res in residuals.items():
        frame[axis] = [0.0 if r is None else 1.0 + r for r in res]
    columns = {"ts": sa.DateTime(timezone=True), **{a: sa.Float(53) for a in residuals}}
    write_chunks(db.engine, db.target, db.table(table), columns, [frame], if_exists="append")


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Builds a loaded config on ``any_db`` with the flat version published."""
    if any_db.schema:
        monkeypatch.setenv("DB_URL", any_db.url)
    else:
        monkeypatch.setenv("DB_URL", any_db.target.url.render_as_string(hide_password=False))
    publish_flat_version(tmp_path / "registry", ["a", "b"])

    def loaded(*overrides: str):
        config = make_project(tmp_path)
        return load_config(
            config,
            [
                f"data.table={any_db.table('s')}",
                "data.axes=[a, b]",
                f"events.table={any_db.table('events')}",
                *overrides,
            ],
        )

    return loaded


def _events(db: Db, table: str = "events") -> pd.DataFrame:
    store = EventStore(db.engine, db.target, db.table(table), db.table("s"))
    return store.read_events()


def test_injected_anomalies_become_exact_events(any_db: Db, project) -> None:
    _append(
        any_db,
        "s",
        {
            "a": [0, 1.5, 1.5, 0, 2.5, 2.5, 2.5, 0, 1.5, 0, 0],  # row 10: look-ahead only
            "b": [0, 0, None, None, 0, 0, 0, 0, 0, 0, 0],
        },
    )
    report = run_scoring(project(), end=_ts(10).to_pydatetime(), start=T0.to_pydatetime())

    assert report.samples == 10
    assert report.counts == {"a": {"alert": 2, "error": 1}, "b": {"alert": 0, "error": 0}}
    events = _events(any_db)[
        ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual", "threshold"]
    ]
    assert events.to_dict("records") == [
        {
            "axis": "a",
            "severity": "alert",
            "start_ts": _ts(1),
            "end_ts": _ts(2),
            "samples": 2,
            "peak_residual": 0.5 + 1.0,
            "threshold": 1.0,
        },
        {
            "axis": "a",
            "severity": "alert",
            "start_ts": _ts(4),
            "end_ts": _ts(6),
            "samples": 3,
            "peak_residual": 2.5,
            "threshold": 1.0,
        },
        {
            "axis": "a",
            "severity": "error",
            "start_ts": _ts(4),
            "end_ts": _ts(6),
            "samples": 3,
            "peak_residual": 2.5,
            "threshold": 2.0,
        },
    ]


def test_rescoring_a_range_writes_no_duplicates(any_db: Db, project) -> None:
    _append(any_db, "s", {"a": [0, 1.5, 1.5, 0, 2.5, 2.5, 2.5, 0, 1.5, 0], "b": [0] * 10})
    window = {"start": T0.to_pydatetime(), "end": _ts(10).to_pydatetime()}
    first = run_scoring(project(), **window)
    again = run_scoring(project(), **window)
    assert first.written == {"inserted": 3, "extended": 0, "unchanged": 0, "suppressed": 0}
    assert again.written == {"inserted": 0, "extended": 0, "unchanged": 3, "suppressed": 0}
    assert len(_events(any_db)) == 3


def test_event_grown_by_newer_data_is_extended(any_db: Db, project) -> None:
    _append(any_db, "s", {"a": [0, 0, 0, 0, 0, 0, 0, 1.5, 1.5, 1.5], "b": [0] * 10})
    first = run_scoring(project())  # continues from the version's training end
    # every row is scored; the newest one is provisional, so the state stops before it
    assert (first.samples, first.end, first.final_until) == (10, _ts(9), _ts(9))
    assert _events(any_db)[["start_ts", "end_ts", "samples"]].values.tolist() == [
        [_ts(7), _ts(9), 3]
    ]

    _append(any_db, "s", {"a": [1.5, 1.5, 0], "b": [0, 0, 0]}, first=10)
    second = run_scoring(project())
    assert second.start == _ts(9) and second.samples == 4  # the provisional row 9 again
    assert second.written["extended"] == 1 and second.written["inserted"] == 0
    stored = _events(any_db)
    assert stored[["start_ts", "end_ts", "samples"]].values.tolist() == [[_ts(7), _ts(11), 5]]
    assert stored["duration_s"].tolist() == [4.0]

    third = run_scoring(project())  # nothing new but the provisional newest sample
    assert third.samples == 1 and len(_events(any_db)) == 1
    assert third.written == {"inserted": 0, "extended": 0, "unchanged": 0, "suppressed": 0}


def test_back_to_back_windows_equal_the_union(any_db: Db, project, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.choice([0.0, 0.5, 1.5, 2.5], size=(200, 2), p=[0.1, 0.5, 0.25, 0.15])
    _append(any_db, "s", {"a": values[:, 0].tolist(), "b": values[:, 1].tolist()})
    whole = tmp_path / "whole.csv"
    run_scoring(
        project("events.table=" + any_db.table("union_events")),
        start=T0.to_pydatetime(),
        end=_ts(200).to_pydatetime(),
        output=whole,
    )
    parts = []
    for lo, hi in [(0, 37), (37, 38), (38, 121), (121, 200)]:
        part = tmp_path / f"part{lo}.csv"
        run_scoring(
            project(), start=_ts(lo).to_pydatetime(), end=_ts(hi).to_pydatetime(), output=part
        )
        parts.append(pd.read_csv(part))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), pd.read_csv(whole))
    keys = ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual"]
    union_events = _events(any_db, "union_events")[keys]
    assert len(union_events) > 10
    pd.testing.assert_frame_equal(_events(any_db)[keys], union_events)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("events.merge_gap_seconds=4", [[_ts(1), _ts(7), 4]]),  # gap 2 s -> 6 s = 4 s
        ("events.merge_gap_seconds=3.9", [[_ts(1), _ts(2), 2], [_ts(6), _ts(7), 2]]),
        ("events.cooldown_seconds=4", [[_ts(1), _ts(2), 2]]),
        ("events.cooldown_seconds=3.9", [[_ts(1), _ts(2), 2], [_ts(6), _ts(7), 2]]),
    ],
)
def test_merge_gap_and_cooldown_across_windows(
    any_db: Db,
    project,
    setting: str,
    expected: list,
) -> None:
    _append(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0, 1.5, 1.5, 0, 0], "b": [0] * 10})
    loaded = project(setting)
    run_scoring(loaded, start=T0.to_pydatetime(), end=_ts(4).to_pydatetime())
    run_scoring(loaded, start=_ts(4).to_pydatetime(), end=_ts(10).to_pydatetime())
    stored = _events(any_db)
    alerts = stored[stored.severity == "alert"]
    kept = alerts[~alerts["suppressed"].astype(bool)]
    assert kept[["start_ts", "end_ts", "samples"]].values.tolist() == expected
    dropped = alerts[alerts["suppressed"].astype(bool)]
    assert len(dropped) == (1 if setting == "events.cooldown_seconds=4" else 0)


def test_score_cli_statuses_and_exit_codes(sqlite_db: Db, tmp_path: Path) -> None:
    config = make_project(tmp_path, "data: {table: s, axes: [a, b]}\n")
    url = sqlite_db.target.url.render_as_string(hide_password=False)

    missing = run_cli("orchestrate.py", "score", "--json", config=config, db_url=url)
    assert missing.code == 4
    assert missing.json()["status"]["code"] == "missing-model"
    assert str(tmp_path / "registry") in missing.json()["status"]["detail"]
    assert "python main.py" in missing.json()["status"]["detail"]

    publish_flat_version(tmp_path / "registry", ["a", "b"])
    _append(sqlite_db, "s", {"a": [0, 2.5, 2.5, 0, 0, 0], "b": [0] * 6})  # row 5: look-ahead
    window = ["--start", T0.isoformat(), "--end", _ts(5).isoformat()]
    mismatch = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        *window,
        "--set",
        "data.axes=[a]",
        config=config,
        db_url=url,
    )
    assert mismatch.code == 3
    assert "trained on axes ['a', 'b'], but data.axes gives ['a']" in mismatch.stdout

    found = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        *window,
        "--fail-on",
        "error",
        "--output",
        str(tmp_path / "levels.csv"),
        config=config,
        db_url=url,
    )
    assert found.code == 7, found.stderr
    assert found.json()["counts"]["a"] == {"alert": 1, "error": 1}
    levels = pd.read_csv(tmp_path / "levels.csv")
    assert list(levels.columns) == ["ts", "a_residual", "a_level", "b_residual", "b_level", "level"]
    assert levels["level"].tolist() == ["ok", "error", "error", "ok", "ok"]
    assert levels["a_residual"].tolist() == [0.0, 2.5, 2.5, 0.0, 0.0]

    quiet = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        *window,
        "--fail-on",
        "error",
        "--set",
        "data.axes=[b, a]",
        config=config,
        db_url=url,
    )
    assert quiet.code == 7  # same window again: events exist, nothing duplicated
    assert quiet.json()["events_written"]["unchanged"] == 2


def _random_residuals(rng: np.random.Generator, n: int) -> list[float | None]:
    """Segments of 1-8 samples, each idle (None), ok (0.5), alert-high (1.5) or error-high."""
    out: list[float | None] = []
    while len(out) < n:
        level = rng.choice(4, p=[0.1, 0.4, 0.3, 0.2])
        out += [(None, 0.5, 1.5, 2.5)[level]] * int(rng.integers(1, 9))
    return out[:n]


@pytest.mark.parametrize("seed", range(12))
def test_random_windows_in_any_order_store_the_union_events(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    t_long, t_short = (int(v) for v in rng.integers(2, 6, size=2))
    epoch = seed % 2 == 1
    merge = (0.0, 3.0)[seed % 4 == 2]
    cooldown = (0.0, 4.0)[seed % 4 == 3]  # the cooldown assumes windows in time order
    n = 160
    frame = pd.DataFrame({"ts": [_ts(i) for i in range(n)]})
    for axis in ("a", "b"):
        frame[axis] = [0.0 if r is None else 1.0 + r for r in _random_residuals(rng, n)]
    if epoch:
        frame["ts"] = [(t - pd.Timestamp(0, tz="UTC")).total_seconds() for t in frame["ts"]]
    time_type = sa.Float(53) if epoch else sa.DateTime(timezone=True)
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "s",
        {"ts": time_type, "a": sa.Float(53), "b": sa.Float(53)},
        [frame],
    )
    monkeypatch.setenv("DB_URL", sqlite_db.target.url.render_as_string(hide_password=False))
    publish_flat_version(
        tmp_path / "registry", ["a", "b"], t_long=t_long, t_short=t_short, epoch=epoch
    )

    def loaded(events_table: str):
        return load_config(
            make_project(tmp_path),
            [
                "data.table=s",
                "data.axes=[a, b]",
                f"events.table={events_table}",
                f"events.merge_gap_seconds={merge}",
                f"events.cooldown_seconds={cooldown}",
            ],
        )

    run_scoring(loaded("union"), start=T0.to_pydatetime(), end=_ts(n).to_pydatetime())
    cuts = sorted({0, n, *(int(c) for c in rng.integers(1, n, size=int(rng.integers(2, 7))))})
    windows = list(itertools.pairwise(cuts))
    if not cooldown:
        rng.shuffle(windows)
    for lo, hi in windows:
        run_scoring(loaded("pieces"), start=_ts(lo).to_pydatetime(), end=_ts(hi).to_pydatetime())

    keys = ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual", "suppressed"]
    union = _events(sqlite_db, "union")[keys]
    assert len(union) > 5
    pd.testing.assert_frame_equal(_events(sqlite_db, "pieces")[keys], union)


def test_zone_offsets_on_the_window_are_converted_to_utc(any_db: Db, project) -> None:
    _append(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0], "b": [0] * 6})
    plus_two = dt.timezone(dt.timedelta(hours=2))
    report = run_scoring(
        project(),
        start=T0.tz_convert(plus_two).to_pydatetime(),  # 02:00+02:00 is T0
        end=_ts(5).tz_convert(plus_two).to_pydatetime(),
    )
    assert (report.samples, report.start) == (5, T0)
    assert report.counts["a"]["alert"] == 1


def test_a_long_axis_offline_in_the_window_is_idle_not_an_error(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(_ts(i), k, 2.5 if (k == 1 and i in (2, 3)) else 1.0) for i in range(6) for k in (1,)]
    frame = pd.DataFrame(rows, columns=["ts", "axis_id", "value"])
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "long",
        {"ts": sa.DateTime(timezone=True), "axis_id": sa.Integer(), "value": sa.Float(53)},
        [frame],
    )
    monkeypatch.setenv("DB_URL", sqlite_db.target.url.render_as_string(hide_password=False))
    publish_flat_version(tmp_path / "registry", ["axis1", "axis2"])
    loaded = load_config(make_project(tmp_path), ["data.table=long", "data.axes=[1, 2]"])
    out = tmp_path / "levels.csv"
    report = run_scoring(loaded, start=T0.to_pydatetime(), end=_ts(5).to_pydatetime(), output=out)
    assert report.counts == {"axis1": {"alert": 1, "error": 0}, "axis2": {"alert": 0, "error": 0}}
    assert pd.read_csv(out)["axis2_level"].tolist() == ["idle"] * 5
