"""The worst events: one order (severity, ratio, duration, start), what ``score`` prints and lists.

Score runs use the flat version of ``scoring_helpers`` (value - 1 is the residual, expected
1.0, MinC = 1, MaxC = 2, runs of 2 samples), so every field of an event is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from clitools import make_project, run_cli
from conftest import Db
from scoring_helpers import (
    T0,
    append_samples,
    loaded_config,
    publish_linear_version,
    ts,
    use_database,
)

from Orchestration.report import format_scoring
from Orchestration.scoring import run_scoring
from Scoring import EVENT_RECORD_FIELDS, event_records, format_duration, worst_first, worst_records


def _events(*rows: tuple) -> pd.DataFrame:
    columns = ["asset", "axis", "severity", "ratio", "peak_residual", "threshold", "duration_s"]
    frame = pd.DataFrame([row[:-1] for row in rows], columns=columns)
    frame["start_ts"] = [T0 + pd.Timedelta(minutes=row[-1]) for row in rows]
    return frame


def test_worst_first_orders_by_severity_ratio_duration_then_start() -> None:
    events = _events(
        ("r1", "a", "alert", 9.0, 9.0, 1.0, 10.0, 0),  # biggest ratio, but only an alert
        ("r1", "b", "error", 1.2, 2.4, 2.0, 10.0, 1),
        ("r2", "a", "error", 1.5, 3.0, 2.0, 5.0, 2),
        ("r2", "b", "error", 1.5, 3.0, 2.0, 50.0, 3),  # same ratio, longer
        ("r3", "a", "error", 1.5, 3.0, 2.0, 50.0, 0),  # same ratio and length, earlier
        ("r3", "b", "error", None, 8.0, 2.0, 99.0, 0),  # stored before the ratio existed
        ("r4", "a", "alert", 2.0, 2.0, 1.0, 10.0, 4),
    )
    ranked = worst_first(events)
    assert list(zip(ranked["asset"], ranked["axis"], strict=True)) == [
        ("r3", "a"),
        ("r2", "b"),
        ("r2", "a"),
        ("r1", "b"),
        ("r3", "b"),
        ("r1", "a"),
        ("r4", "a"),
    ]
    assert worst_first(events, 2)["asset"].tolist() == ["r3", "r2"]
    assert worst_first(events.iloc[:0]).empty


def test_worst_records_merge_lists_in_the_same_order() -> None:
    first = event_records(_events(("r1", "a", "alert", 3.0, 3.0, 1.0, 1.0, 0)))
    second = event_records(_events(("r2", "b", "error", 1.1, 2.2, 2.0, 1.0, 5)))
    merged = worst_records(first + second)
    assert [(r["asset"], r["severity"]) for r in merged] == [("r2", "error"), ("r1", "alert")]
    assert worst_records([], 3) == []
    assert list(merged[0]) == list(EVENT_RECORD_FIELDS)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (1.891, "1.9s"),
        (12.4, "12s"),
        (1796.516, "29m57s"),
        (7500.0, "2h05m"),
        (3 * 86400 + 4 * 3600 + 10, "3d04h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_score_run_lists_its_worst_events_with_their_peaks(
    any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    append_samples(
        any_db,
        "s",
        {
            "a": [0, 1.5, 1.5, 0, 2.5, 3.0, 2.5, 0, 1.5, 0, 0],  # row 10: look-ahead only
            "b": [0, 0, 0, 0, 0, 0, 0, 0, -1.25, -1.5, 0],  # upper side only: no event
        },
    )
    report = run_scoring(
        loaded_config(any_db, tmp_path), start=T0.to_pydatetime(), end=ts(10).to_pydatetime()
    )
    picked = [
        {k: r[k] for k in ("axis", "severity", "start", "duration_s", "ratio", "side", "peak_ts")}
        | {"actual": r["actual"], "expected": r["expected"]}
        for r in report.worst
    ]
    assert picked == [
        {
            "axis": "a",
            "severity": "error",
            "start": ts(4).isoformat(),
            "duration_s": 2.0,
            "ratio": 1.5,  # 3.0 over MaxC 2
            "side": "above",
            "peak_ts": ts(5).isoformat(),
            "actual": 4.0,
            "expected": 1.0,
        },
        {
            "axis": "a",
            "severity": "alert",
            "start": ts(4).isoformat(),
            "duration_s": 2.0,
            "ratio": 3.0,  # 3.0 over MinC 1
            "side": "above",
            "peak_ts": ts(5).isoformat(),
            "actual": 4.0,
            "expected": 1.0,
        },
        {
            "axis": "a",
            "severity": "alert",
            "start": ts(1).isoformat(),
            "duration_s": 1.0,
            "ratio": 1.5,
            "side": "above",
            "peak_ts": ts(1).isoformat(),
            "actual": 2.5,
            "expected": 1.0,
        },
    ]
    assert report.to_dict()["worst_events"] == report.worst
    text = format_scoring(report)
    assert "worst events (ratio: peak over its threshold)" in text
    lines = text.splitlines()
    first = lines[lines.index("worst events (ratio: peak over its threshold)") + 3]
    assert first.split() == [
        "a",
        "error",
        ts(4).strftime("%Y-%m-%d"),
        "00:00:04",
        "2.0s",
        "1.50",
        "above",
    ]


def test_score_json_lists_worst_events(sqlite_db: Db, tmp_path: Path) -> None:
    config = make_project(
        tmp_path, "data: {table: s, axes: [a, b]}\nevents: {merge_gap_seconds: 0}\n"
    )
    url = sqlite_db.target.url.render_as_string(hide_password=False)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    append_samples(sqlite_db, "s", {"a": [0, 0, 0, 0, 0, 0], "b": [0, 2.5, 2.5, 0, 0, 0]})
    window = ["--start", T0.isoformat(), "--end", ts(5).isoformat()]
    found = run_cli("orchestrate.py", "score", "--json", *window, config=config, db_url=url)
    assert found.code == 0, found.stderr
    worst = found.json()["worst_events"]
    assert [(e["axis"], e["severity"], e["side"], e["ratio"]) for e in worst] == [
        ("b", "error", "above", 1.25),
        ("b", "alert", "above", 2.5),
    ]
    assert worst[0]["asset"] is None and worst[0]["contributors"] == []
    assert worst[0]["start"] == ts(1).isoformat() and worst[0]["peak_ts"] == ts(1).isoformat()


def test_event_fields_of_a_hand_made_window_on_both_sides_and_the_machine_channel() -> None:
    from Scoring import extract_events

    rule = {"MinC": 1.0, "MaxC": 2.0, "MinC_low": -1.0, "MaxC_low": -2.0, "side": "both"}
    machine = {"MinC": 1.0, "MaxC": 4.0}
    steps = {"T_long_steps": 2, "T_short_steps": 2, "dt_seconds": 1.0}
    residual = [0.0, -1.5, -3.0, -2.5, 0.0, 0.0]
    levels = ["ok", "alert", "error", "error", "ok", "ok"]
    shares = [[0.5, 0.5], [0.6, 0.4], [0.75, 0.25], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]]
    events = extract_events(
        [float(i) for i in range(6)],
        {"a": residual, "*": [0.0, 2.0, 6.0, 5.0, 0.0, 0.0]},
        {"a": levels, "*": levels},
        {"a": {**rule, **steps}, "*": {**machine, **steps}},
        axes=["a", "*"],
        values={"a": [10.0 + r for r in residual]},
        expected={"a": [10.0] * 6},
        contributions=(["a", "b"], pd.DataFrame(shares).to_numpy()),
    )
    columns = ["axis", "severity", "start", "end", "peak_ts", "side", "actual", "expected", "ratio"]
    rows = events[columns].astype(object).where(events[columns].notna(), None)
    assert rows.values.tolist() == [
        # The peak is the sample furthest beyond the alert level: -3 is 3 x MinC_low, 1.5 x
        # MaxC_low; the machine's 6 is 6 x MinC, 1.5 x MaxC (4).
        ["a", "alert", 1.0, 3.0, 2.0, "below", 7.0, 10.0, 3.0],
        ["*", "alert", 1.0, 3.0, 2.0, "above", None, None, 6.0],
        ["a", "error", 2.0, 3.0, 2.0, "below", 7.0, 10.0, 1.5],
        ["*", "error", 2.0, 3.0, 2.0, "above", None, None, 1.5],
    ]
    machine_events = events[events["axis"] == "*"]["contributors"].tolist()
    assert machine_events == ['[{"axis": "a", "share": 0.75}, {"axis": "b", "share": 0.25}]'] * 2
    assert events[events["axis"] == "a"]["contributors"].isna().all()
