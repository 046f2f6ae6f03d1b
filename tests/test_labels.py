"""Labels: reading the labels table, masks for training, and every evaluation figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import write_chunks
from Labels import LabelsError, evaluate_detection, label_mask, read_labels

T0 = pd.Timestamp("2026-01-05T00:00:00Z")


def _ts(n: int) -> pd.Series:
    return pd.Series(T0 + pd.to_timedelta(np.arange(n), unit="s"))


def _labels(*windows: tuple[int, int, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_ts": [T0 + pd.Timedelta(seconds=a) for a, _, _ in windows],
            "end_ts": [T0 + pd.Timedelta(seconds=b) for _, b, _ in windows],
            "axis": pd.Series([axis for _, _, axis in windows], dtype=object),
            "kind": ["offset"] * len(windows),
            "severity": ["alert"] * len(windows),
        }
    )


def _events(*events: tuple[str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "axis": [axis for axis, _, _ in events],
            "start": [T0 + pd.Timedelta(seconds=a) for _, a, _ in events],
            "end": [T0 + pd.Timedelta(seconds=b) for _, _, b in events],
        }
    )


def test_pointwise_and_event_figures_on_hand_made_labels():
    # 20 samples, one per second; labels cover 2-5 (axis a) and 12-13 (machine-wide).
    flagged = np.zeros(20, dtype=bool)
    flagged[[3, 4, 5, 6, 15]] = True  # 3 of 6 labelled samples, 2 false ones
    counted = np.ones(20, dtype=bool)
    counted[19] = False  # idle: neither positive nor negative
    labels = _labels((2, 5, "a"), (12, 13, None))
    events = _events(("a", 3, 6), ("b", 15, 15))
    report = evaluate_detection(_ts(20), flagged, counted, events, labels)

    assert (report.samples, report.positives, report.flagged, report.true_positives) == (
        19,
        6,
        5,
        3,
    )
    assert report.precision == pytest.approx(3 / 5)
    assert report.recall == pytest.approx(3 / 6)
    assert report.f1 == pytest.approx(2 * (3 / 5) * (3 / 6) / (3 / 5 + 3 / 6))
    assert report.false_alarm_rate == pytest.approx(2 / 13)
    assert report.missed_alarm_rate == pytest.approx(0.5)
    # Event-wise: label (2-5, a) found by the a-event starting at 3 (1 s late); the machine
    # label 12-13 overlaps no event. The b-event at 15 overlaps no label: false.
    assert (report.labels, report.labels_found, report.event_recall) == (2, 1, 0.5)
    assert (report.events, report.true_events, report.event_precision) == (2, 1, 0.5)
    assert report.mean_time_to_detect_s == pytest.approx(1.0)
    assert report.false_events == 1
    assert report.days == pytest.approx(19 / 86_400)
    assert report.false_events_per_day == pytest.approx(86_400 / 19)
    assert [row["found"] for row in report.per_label] == [True, False]


def test_an_event_on_another_axis_does_not_find_an_axis_label_but_the_machine_channel_does():
    labels = _labels((2, 5, "a"))
    other = evaluate_detection(
        _ts(10), np.zeros(10, bool), np.ones(10, bool), _events(("b", 2, 5)), labels
    )
    assert (other.labels_found, other.true_events) == (0, 1)  # true in time, wrong axis
    machine = evaluate_detection(
        _ts(10), np.zeros(10, bool), np.ones(10, bool), _events(("*", 0, 3)), labels
    )
    assert machine.labels_found == 1
    assert machine.mean_time_to_detect_s == 0.0  # it started before the label


def test_labels_outside_the_scored_range_are_left_out():
    labels = _labels((2, 5, "a"), (100, 110, "a"))
    report = evaluate_detection(_ts(10), np.zeros(10, bool), np.ones(10, bool), _events(), labels)
    assert report.labels == 1
    assert report.event_recall == 0.0
    assert report.precision is None and report.event_precision is None


def test_label_mask_per_axis_and_machine():
    masks = label_mask(_ts(10), _labels((1, 2, "a"), (5, 6, None)), ["a", "b"])
    assert np.flatnonzero(masks["*"]).tolist() == [1, 2, 5, 6]
    assert np.flatnonzero(masks["a"]).tolist() == [1, 2, 5, 6]
    assert np.flatnonzero(masks["b"]).tolist() == [5, 6]


@pytest.mark.parametrize("time_kind", ["timestamp", "epoch"])
def test_read_labels_from_sqlite_and_postgresql(any_db: Db, time_kind: str):
    table = any_db.table("labels")
    frame = _labels((1, 2, "axis1"), (5, 6, None))
    if time_kind == "epoch":
        for column in ("start_ts", "end_ts"):
            frame[column] = frame[column].map(lambda t: t.timestamp())
        time_type: sa.types.TypeEngine = sa.Float(53)
    else:
        time_type = sa.DateTime(timezone=True)
    columns = {
        "start_ts": time_type,
        "end_ts": time_type,
        "axis": sa.String(32),
        "kind": sa.String(32),
        "severity": sa.String(16),
    }
    write_chunks(any_db.engine, any_db.target, table, columns, [frame.iloc[::-1]])
    labels = read_labels(any_db.engine, any_db.target, table)
    assert labels["start_ts"].tolist() == [
        T0 + pd.Timedelta(seconds=1),
        T0 + pd.Timedelta(seconds=5),
    ]
    assert labels["axis"].tolist() == ["axis1", None]


def test_axis_kind_and_severity_are_optional(sqlite_db: Db):
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "windows",
        {"start_ts": sa.DateTime(), "end_ts": sa.DateTime()},
        [pd.DataFrame({"start_ts": [T0], "end_ts": [T0 + pd.Timedelta(seconds=5)]})],
    )
    labels = read_labels(sqlite_db.engine, sqlite_db.target, "windows")
    assert labels.to_dict("records") == [
        {
            "start_ts": T0,
            "end_ts": T0 + pd.Timedelta(seconds=5),
            "axis": None,
            "kind": None,
            "severity": None,
        }
    ]


def test_read_labels_names_what_is_wrong(sqlite_db: Db):
    with pytest.raises(
        LabelsError, match=r"labels table 'nope' does not exist .*labels.table: null"
    ):
        read_labels(sqlite_db.engine, sqlite_db.target, "nope")
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "starts",
        {"start_ts": sa.DateTime()},
        [pd.DataFrame({"start_ts": [T0]})],
    )
    with pytest.raises(LabelsError, match=r"lacks column\(s\) \['end_ts'\]; it needs start_ts"):
        read_labels(sqlite_db.engine, sqlite_db.target, "starts")
    write_chunks(
        sqlite_db.engine,
        sqlite_db.target,
        "bare",
        {"start_ts": sa.DateTime(), "end_ts": sa.DateTime()},
        [pd.DataFrame({"start_ts": [T0, T0], "end_ts": [T0, None]})],
    )
    with pytest.raises(LabelsError, match=r"1 window\(s\) have no start_ts or end_ts"):
        read_labels(sqlite_db.engine, sqlite_db.target, "bare")
    columns = {
        "start_ts": sa.DateTime(),
        "end_ts": sa.DateTime(),
        "axis": sa.String(8),
        "kind": sa.String(8),
        "severity": sa.String(8),
    }
    backwards = _labels((5, 2, "a"))
    write_chunks(sqlite_db.engine, sqlite_db.target, "backwards", columns, [backwards])
    with pytest.raises(LabelsError, match=r"1 window\(s\) end before they start"):
        read_labels(sqlite_db.engine, sqlite_db.target, "backwards")


def test_evaluate_without_a_labels_table_is_a_config_error(tmp_path):
    from clitools import make_project

    from Orchestration import ConfigError, load_config
    from Orchestration.evaluation import run_evaluation

    loaded = load_config(make_project(tmp_path))
    with pytest.raises(ConfigError, match=r"labels\.table: not set; name the table"):
        run_evaluation(loaded)


def test_a_missing_labels_table_is_invalid_input_for_train_and_evaluate(tmp_path):
    from clitools import make_project, run_cli

    config = make_project(tmp_path, "labels: {table: nope}\nplots: {enabled: false}\n")
    assert run_cli("orchestrate.py", "demo-db", "--rows", "1000", config=config).code == 0
    trained = run_cli("main.py", "--set", "labels.table=null", config=config)
    assert trained.code == 0, trained.stderr
    for command in (["main.py"], ["orchestrate.py", "evaluate"]):
        run = run_cli(*command, "--json", config=config)
        assert run.code == 3, run.stderr
        assert run.json()["status"]["code"] == "invalid-input"
        assert "labels table 'nope' does not exist" in run.json()["status"]["detail"]
        assert "Traceback" not in run.stderr


def test_evaluation_episodes_join_chunk_edges_merge_gaps_and_drop_cooldown_repeats():
    from Orchestration.evaluation import _episodes

    def chunk(*events):
        return pd.DataFrame(
            [
                {
                    "axis": axis,
                    "severity": "alert",
                    "start": T0 + pd.Timedelta(seconds=a),
                    "end": T0 + pd.Timedelta(seconds=b),
                    "starts_at_frame_start": first,
                    "ends_at_frame_end": last,
                }
                for axis, a, b, first, last in events
            ]
        )

    chunks = [
        chunk(("a", 0, 2, False, False), ("a", 50, 59, False, True)),
        chunk(
            ("a", 60, 61, True, False), ("a", 70, 71, False, False), ("a", 200, 201, False, False)
        ),
    ]
    # 50-59 and 60-61 are one run cut by the chunk edge; 70 is within a 10 s gap of 61.
    assert _episodes(chunks, 10.0)[["start", "end"]].map(
        lambda t: int((t - T0).total_seconds())
    ).values.tolist() == [[0, 2], [50, 71], [200, 201]]
    # Without a gap 70-71 stays apart; a 100 s cooldown then drops it and 50-61 (after 0-2).
    cooled = _episodes(chunks, 0.0, cooldown=100.0)
    assert [int((t - T0).total_seconds()) for t in cooled["start"]] == [0, 200]
