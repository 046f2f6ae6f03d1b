"""Scoring runs against real SQLite and PostgreSQL: events, idempotency, continuation, statuses.

Most tests use the flat version of ``scoring_helpers`` (value - 1 is the residual, MinC = 1,
MaxC = 2, T_long_steps = T_short_steps = 2, so a look-back of one sample).
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
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

from Database import write_chunks
from Orchestration import load_config
from Orchestration.destinations import DestinationError
from Orchestration.scoring import ScoringReport, run_scoring
from Scoring import ScoringInputError


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Builds a loaded config on ``any_db`` with the flat version published."""
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    return lambda *overrides: loaded_config(any_db, tmp_path, *overrides)


def test_injected_anomalies_become_exact_events(any_db: Db, project) -> None:
    append_samples(
        any_db,
        "s",
        {
            "a": [0, 1.5, 1.5, 0, 2.5, 2.5, 2.5, 0, 1.5, 0, 0],  # row 10: look-ahead only
            "b": [0, 0, None, None, 0, 0, 0, 0, 0, 0, 0],
        },
    )
    report = run_scoring(project(), end=ts(10).to_pydatetime(), start=T0.to_pydatetime())

    assert report.samples == 10
    assert report.counts == {"a": {"alert": 2, "error": 1}, "b": {"alert": 0, "error": 0}}
    events = stored_events(any_db)[
        ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual", "threshold"]
    ]
    assert events.to_dict("records") == [
        {
            "axis": "a",
            "severity": "alert",
            "start_ts": ts(1),
            "end_ts": ts(2),
            "samples": 2,
            "peak_residual": 0.5 + 1.0,
            "threshold": 1.0,
        },
        {
            "axis": "a",
            "severity": "alert",
            "start_ts": ts(4),
            "end_ts": ts(6),
            "samples": 3,
            "peak_residual": 2.5,
            "threshold": 1.0,
        },
        {
            "axis": "a",
            "severity": "error",
            "start_ts": ts(4),
            "end_ts": ts(6),
            "samples": 3,
            "peak_residual": 2.5,
            "threshold": 2.0,
        },
    ]


def test_rescoring_a_range_writes_no_duplicates(any_db: Db, project) -> None:
    append_samples(any_db, "s", {"a": [0, 1.5, 1.5, 0, 2.5, 2.5, 2.5, 0, 1.5, 0], "b": [0] * 10})
    window = {"start": T0.to_pydatetime(), "end": ts(10).to_pydatetime()}
    first = run_scoring(project(), **window)
    again = run_scoring(project(), **window)
    assert first.written == {"inserted": 3, "extended": 0, "unchanged": 0, "suppressed": 0}
    assert again.written == {"inserted": 0, "extended": 0, "unchanged": 3, "suppressed": 0}
    assert len(stored_events(any_db)) == 3


def test_event_grown_by_newer_data_is_extended(any_db: Db, project) -> None:
    append_samples(any_db, "s", {"a": [0, 0, 0, 0, 0, 0, 0, 1.5, 1.5, 1.5], "b": [0] * 10})
    first = run_scoring(project())  # continues from the version's training end
    # every row is scored; the newest one is provisional, so the state stops before it
    assert (first.samples, first.end, first.final_until) == (10, ts(9), ts(9))
    assert stored_events(any_db)[["start_ts", "end_ts", "samples"]].values.tolist() == [
        [ts(7), ts(9), 3]
    ]

    append_samples(any_db, "s", {"a": [1.5, 1.5, 0], "b": [0, 0, 0]}, first=10)
    second = run_scoring(project())
    assert second.start == ts(9) and second.samples == 4  # the provisional row 9 again
    assert second.written["extended"] == 1 and second.written["inserted"] == 0
    stored = stored_events(any_db)
    assert stored[["start_ts", "end_ts", "samples"]].values.tolist() == [[ts(7), ts(11), 5]]
    assert stored["duration_s"].tolist() == [4.0]

    third = run_scoring(project())  # nothing new but the provisional newest sample
    assert third.samples == 1 and len(stored_events(any_db)) == 1
    assert third.written == {"inserted": 0, "extended": 0, "unchanged": 0, "suppressed": 0}


@pytest.mark.parametrize("seed", range(3))
def test_back_to_back_windows_equal_the_union(
    any_db: Db, project, tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.choice([0.0, 0.5, 1.5, 2.5], size=(200, 2), p=[0.1, 0.5, 0.25, 0.15])
    append_samples(any_db, "s", {"a": values[:, 0].tolist(), "b": values[:, 1].tolist()})
    whole = tmp_path / "whole.csv"
    run_scoring(
        project("events.table=" + any_db.table("union_events")),
        start=T0.to_pydatetime(),
        end=ts(200).to_pydatetime(),
        output=whole,
    )
    inner = rng.choice(np.arange(1, 200), size=int(rng.integers(2, 9)), replace=False)
    cuts = [0, *sorted(int(cut) for cut in inner), 200]
    case = f"seed {seed}, cuts {cuts}"
    parts = []
    for lo, hi in itertools.pairwise(cuts):
        part = tmp_path / f"part{lo}.csv"
        run_scoring(
            project(), start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime(), output=part
        )
        parts.append(pd.read_csv(part))
    pd.testing.assert_frame_equal(
        pd.concat(parts, ignore_index=True), pd.read_csv(whole), obj=f"levels ({case})"
    )
    keys = ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual"]
    union_events = stored_events(any_db, "union_events")[keys]
    assert len(union_events) > 10, case
    pd.testing.assert_frame_equal(stored_events(any_db)[keys], union_events, obj=f"events ({case})")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("events.merge_gap_seconds=4", [[ts(1), ts(7), 4]]),  # gap 2 s -> 6 s = 4 s
        ("events.merge_gap_seconds=3.9", [[ts(1), ts(2), 2], [ts(6), ts(7), 2]]),
        ("events.cooldown_seconds=4", [[ts(1), ts(2), 2]]),
        ("events.cooldown_seconds=3.9", [[ts(1), ts(2), 2], [ts(6), ts(7), 2]]),
    ],
)
def test_merge_gap_and_cooldown_across_windows(
    any_db: Db,
    project,
    setting: str,
    expected: list,
) -> None:
    append_samples(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0, 1.5, 1.5, 0, 0], "b": [0] * 10})
    loaded = project(setting)
    run_scoring(loaded, start=T0.to_pydatetime(), end=ts(4).to_pydatetime())
    run_scoring(loaded, start=ts(4).to_pydatetime(), end=ts(10).to_pydatetime())
    stored = stored_events(any_db)
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

    publish_linear_version(tmp_path / "registry", ["a", "b"])
    append_samples(sqlite_db, "s", {"a": [0, 2.5, 2.5, 0, 0, 0], "b": [0] * 6})  # row 5: look-ahead
    window = ["--start", T0.isoformat(), "--end", ts(5).isoformat()]
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
    t_long, t_short = (int(v) for v in rng.integers(1, 6, size=2))
    epoch = seed % 2 == 1
    merge = (0.0, 3.0)[seed % 4 == 2]
    cooldown = (0.0, 4.0)[seed % 4 == 3]  # the cooldown assumes windows in time order
    n = 160
    frame = pd.DataFrame({"ts": [ts(i) for i in range(n)]})
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
    use_database(sqlite_db, monkeypatch)
    publish_linear_version(
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

    run_scoring(loaded("union"), start=T0.to_pydatetime(), end=ts(n).to_pydatetime())
    cuts = sorted({0, n, *(int(c) for c in rng.integers(1, n, size=int(rng.integers(2, 7))))})
    windows = list(itertools.pairwise(cuts))
    if not cooldown:
        rng.shuffle(windows)
    for lo, hi in windows:
        run_scoring(loaded("pieces"), start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime())

    keys = ["axis", "severity", "start_ts", "end_ts", "samples", "peak_residual", "suppressed"]
    union = stored_events(sqlite_db, "union")[keys]
    assert len(union) > 5
    pd.testing.assert_frame_equal(stored_events(sqlite_db, "pieces")[keys], union)


def test_zone_offsets_on_the_window_are_converted_to_utc(any_db: Db, project) -> None:
    append_samples(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0], "b": [0] * 6})
    plus_two = dt.timezone(dt.timedelta(hours=2))
    report = run_scoring(
        project(),
        start=T0.tz_convert(plus_two).to_pydatetime(),  # 02:00+02:00 is T0
        end=ts(5).tz_convert(plus_two).to_pydatetime(),
    )
    assert (report.samples, report.start) == (5, T0)
    assert report.counts["a"]["alert"] == 1


def test_a_long_axis_offline_in_the_window_is_idle_not_an_error(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(ts(i), k, 2.5 if (k == 1 and i in (2, 3)) else 1.0) for i in range(6) for k in (1,)]
    frame = pd.DataFrame(rows, columns=["ts", "axis_id", "value"])
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "long",
        {"ts": sa.DateTime(timezone=True), "axis_id": sa.Integer(), "value": sa.Float(53)},
        [frame],
    )
    use_database(sqlite_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["axis1", "axis2"])
    loaded = load_config(make_project(tmp_path), ["data.table=long", "data.axes=[1, 2]"])
    out = tmp_path / "levels.csv"
    report = run_scoring(loaded, start=T0.to_pydatetime(), end=ts(5).to_pydatetime(), output=out)
    assert report.counts == {"axis1": {"alert": 1, "error": 0}, "axis2": {"alert": 0, "error": 0}}
    assert pd.read_csv(out)["axis2_level"].tolist() == ["idle"] * 5


def test_adjacent_windows_join_an_episode_also_when_one_sample_makes_a_run(
    any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # T_long_steps = T_short_steps = 1: no look-back is needed for the levels, but the rows
    # next to each window still tell the store that the two halves touch.
    append_samples(any_db, "s", {"a": [0, 0, 0, 2.5, 2.5, 2.5, 2.5, 0, 0, 0], "b": [0] * 10})
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"], t_long=1, t_short=1)
    loaded = loaded_config(any_db, tmp_path)
    for lo, hi in [(0, 5), (5, 10)]:
        run_scoring(loaded, start=ts(lo).to_pydatetime(), end=ts(hi).to_pydatetime())
    events = stored_events(any_db)[["axis", "severity", "start_ts", "end_ts", "samples"]]
    assert events.to_dict("records") == [
        {"axis": "a", "severity": s, "start_ts": ts(3), "end_ts": ts(6), "samples": 4}
        for s in ("alert", "error")
    ]


@pytest.mark.parametrize("epoch", [False, True], ids=["timestamps", "epoch-seconds"])
def test_residuals_follow_the_trend_from_the_versions_t0(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: bool
) -> None:
    # The model is 1 + 0.25 * (seconds since t0), t0 one hour before T0: at sample i it
    # expects 901 + 0.25 i. Residuals measured from any other origin are off by hundreds.
    residuals = [0.0, 0.5, 1.5, 1.5, 0.5, 2.5, 2.5, 0.0, 0.0, 0.0]
    expected = [1 + 0.25 * (3600 + i) for i in range(10)]
    frame = pd.DataFrame(
        {
            "ts": [ts(i) for i in range(10)],
            "a": [e + r for e, r in zip(expected, residuals, strict=True)],
            "b": expected,
        }
    )
    if epoch:
        frame["ts"] = [t.timestamp() for t in frame["ts"]]
    time_type = sa.Float(53) if epoch else sa.DateTime(timezone=True)
    columns = {"ts": time_type, "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(sqlite_db.engine, sqlite_db.target, "s", columns, [frame])
    use_database(sqlite_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"], slope=0.25, epoch=epoch)
    out = tmp_path / "levels.csv"

    report = run_scoring(
        loaded_config(sqlite_db, tmp_path),
        start=ts(2).to_pydatetime(),
        end=ts(9).to_pydatetime(),
        output=out,
    )

    levels = pd.read_csv(out)
    assert levels["a_residual"].tolist() == pytest.approx(residuals[2:9], abs=1e-9)
    assert levels["b_residual"].tolist() == pytest.approx([0.0] * 7, abs=1e-9)
    assert levels["a_level"].tolist() == ["alert", "alert", "ok", "error", "error", "ok", "ok"]
    assert report.counts["a"] == {"alert": 2, "error": 1}


def test_suppressed_events_are_stored_but_not_counted_and_never_fail_a_run(
    any_db: Db, project
) -> None:
    # Two alert episodes 4 s apart; a 10 s cooldown suppresses the second.
    append_samples(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0, 1.5, 1.5, 0, 0], "b": [0] * 10})
    loaded = project("events.cooldown_seconds=10")

    first = run_scoring(loaded, start=T0.to_pydatetime(), end=ts(4).to_pydatetime())
    second = run_scoring(loaded, start=ts(4).to_pydatetime(), end=ts(10).to_pydatetime())
    both = run_scoring(
        project("events.cooldown_seconds=10", f"events.table={any_db.table('both')}"),
        start=T0.to_pydatetime(),
        end=ts(10).to_pydatetime(),
    )

    assert (first.counts["a"], first.exit_code("alert")) == ({"alert": 1, "error": 0}, 6)
    assert second.counts["a"] == {"alert": 0, "error": 0}
    assert second.written == {"inserted": 0, "extended": 0, "unchanged": 0, "suppressed": 1}
    assert second.exit_code("alert") == 0
    assert both.counts["a"] == {"alert": 1, "error": 0}
    assert both.written == {"inserted": 1, "extended": 0, "unchanged": 0, "suppressed": 1}
    stored = stored_events(any_db)
    assert stored[["start_ts", "suppressed"]].values.tolist() == [[ts(1), False], [ts(6), True]]


@pytest.mark.parametrize(
    ("alerts", "errors", "fail_on", "code"),
    [
        (0, 0, None, 0),
        (2, 1, None, 0),
        (0, 0, "alert", 0),
        (2, 0, "alert", 6),
        (0, 1, "alert", 7),
        (2, 1, "alert", 7),
        (0, 0, "error", 0),
        (2, 0, "error", 0),
        (0, 1, "error", 7),
    ],
)
def test_fail_on_exit_codes(alerts: int, errors: int, fail_on: str | None, code: int) -> None:
    # Alerts on one axis and errors on another: the totals over axes decide.
    report = ScoringReport(
        version="v1",
        run_id="r",
        start=None,
        end=None,
        samples=10,
        counts={"a": {"alert": alerts, "error": 0}, "b": {"alert": 0, "error": errors}},
    )
    assert int(report.exit_code(fail_on)) == code


def test_score_cli_fail_on_alert_exits_6_on_alert_events_only(
    sqlite_db: Db, tmp_path: Path
) -> None:
    config = make_project(tmp_path, "data: {table: s, axes: [a, b]}\n")
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    append_samples(sqlite_db, "s", {"a": [0, 1.5, 1.5, 0, 0, 0], "b": [0] * 6})
    window = ["--start", T0.isoformat(), "--end", ts(5).isoformat()]

    codes = {
        fail_on: run_cli(
            "orchestrate.py",
            "score",
            *window,
            "--fail-on",
            fail_on,
            config=config,
            db_url=sqlite_db.url,
        ).code
        for fail_on in ("alert", "error")
    }

    assert codes == {"alert": 6, "error": 0}


def test_an_axis_mismatch_names_both_lists_and_the_differences(project) -> None:
    message = (
        r"version v1 was trained on axes \['a', 'b'\], but data.axes gives \['a', 'c'\] "
        r"\(missing: \['b'\], not trained: \['c'\]\); score with the matching data.axes or "
        r"train a new version"
    )
    with pytest.raises(ScoringInputError, match=message):
        run_scoring(project("data.axes=[a, c]"))


def test_an_output_folder_is_refused_before_anything_is_written(
    any_db: Db, project, tmp_path: Path
) -> None:
    append_samples(any_db, "s", {"a": [0, 1.5, 1.5, 0, 0], "b": [0] * 5})
    with pytest.raises(DestinationError, match=r"--output .* cannot be written: is a folder"):
        run_scoring(project(), start=T0.to_pydatetime(), end=ts(4).to_pydatetime(), output=tmp_path)
    assert not sa.inspect(any_db.engine).has_table("events", schema=any_db.schema)
