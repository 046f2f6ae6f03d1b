"""Operator feedback on events: listing, labelling, verdicts that survive re-scoring and version
changes, and importing failure windows from a CSV into the labels table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db
from scoring_helpers import T0, append_asset_rows, fleet_config, publish_linear_version, ts

from Database import write_chunks
from Labels import (
    VERDICTS,
    FeedbackStore,
    LabelsError,
    import_label_csv,
    match_verdicts,
    read_labels,
)
from Orchestration.feedback import label_events, list_events
from Orchestration.scoring import run_scoring


def _config(db: Db, folder: Path, *overrides: str):
    return fleet_config(db, folder, f"labels.table={db.table('failures')}", *overrides)


def _publish(folder: Path, asset: str) -> str:
    return publish_linear_version(folder / "registry" / asset, ["a", "b"])


@pytest.fixture
def use_db(any_db: Db, monkeypatch: pytest.MonkeyPatch) -> Db:
    monkeypatch.setenv("DB_URL", any_db.url)
    return any_db


def _scored_r1(db: Db, folder: Path):
    """Asset r1 with :data:`TWO_INCIDENTS`, scored by its version v1; the config."""
    loaded = _config(db, folder)
    _publish(folder, "r1")
    append_asset_rows(db, "r1", TWO_INCIDENTS)
    run_scoring(loaded, asset="r1", end=ts(12).to_pydatetime())
    return loaded


def _listed(events: pd.DataFrame) -> list[tuple]:
    return [
        (r.asset, r.axis, r.severity, r.start_ts, r.end_ts, r.model_version, r.verdict)
        for r in events.itertuples()
    ]


TWO_INCIDENTS = [0.0, 0.0, 1.5, 1.5, 1.5, 0.0, 0.0, 2.5, 2.5, 0.0, 0.0, 0.0]
"""An alert at rows 2-4; an error (and its alert) at rows 7-8."""


def test_events_are_listed_newest_first_with_filters(use_db: Db, tmp_path: Path) -> None:
    loaded = _config(use_db, tmp_path)
    for asset in ("r1", "r2"):
        _publish(tmp_path, asset)
        append_asset_rows(use_db, asset, TWO_INCIDENTS)
        run_scoring(loaded, asset=asset, end=ts(12).to_pydatetime())

    every = list_events(loaded)
    r1 = list_events(loaded, asset="r1")
    errors = list_events(loaded, severity="error")
    late = list_events(loaded, asset="r1", since=ts(5).to_pydatetime())

    assert len(every) == 6
    assert _listed(r1) == [
        ("r1", "a", "error", ts(7), ts(8), "v1", None),
        ("r1", "a", "alert", ts(7), ts(8), "v1", None),
        ("r1", "a", "alert", ts(2), ts(4), "v1", None),
    ]
    assert sorted(errors["asset"]) == ["r1", "r2"] and set(errors["severity"]) == {"error"}
    assert [(r.severity, r.start_ts) for r in late.itertuples()] == [
        ("error", ts(7)),
        ("alert", ts(7)),
    ]
    peak = r1[(r1["severity"] == "error")].iloc[0]
    assert peak["peak_residual"] == pytest.approx(2.5)
    assert peak["ratio"] == pytest.approx(1.25)  # 2.5 over MaxC = 2
    assert len(list_events(loaded, limit=2)) == 2


def test_a_verdict_survives_rescoring_by_the_same_and_another_version(
    use_db: Db, tmp_path: Path
) -> None:
    loaded = _scored_r1(use_db, tmp_path)
    first = list_events(loaded, asset="r1", severity="alert")
    early = int(first[first["start_ts"] == ts(2)]["id"].iloc[0])
    late = int(first[first["start_ts"] == ts(7)]["id"].iloc[0])

    labelled = label_events(loaded, [early], "confirmed", "bearing")
    label_events(loaded, [late], "false-positive")

    assert _listed(labelled) == [("r1", "a", "alert", ts(2), ts(4), "v1", "confirmed")]
    assert labelled["note"].tolist() == ["bearing"]
    expected = {ts(2): "confirmed", ts(7): "false-positive"}

    def verdicts() -> dict:
        alerts = list_events(loaded, asset="r1", severity="alert")
        return dict(zip(alerts["start_ts"], alerts["verdict"], strict=True))

    # The same version again, then another version over part of the range (new rows, new ids),
    # then the whole range.
    run_scoring(loaded, asset="r1", start=T0.to_pydatetime(), end=ts(12).to_pydatetime())
    assert verdicts() == expected
    _publish(tmp_path, "r1")
    run_scoring(loaded, asset="r1", start=ts(3).to_pydatetime(), end=ts(12).to_pydatetime())
    assert verdicts() == {ts(2): "confirmed", ts(3): "confirmed", ts(7): "false-positive"}
    run_scoring(loaded, asset="r1", start=T0.to_pydatetime(), end=ts(12).to_pydatetime())
    after = list_events(loaded, asset="r1", severity="alert")
    assert set(after["model_version"]) == {"v2"} and early not in set(after["id"])
    assert verdicts() == expected
    # The error event of rows 7-8 was never labelled: severity is part of the key.
    assert list_events(loaded, asset="r1", severity="error")["verdict"].tolist() == [None]
    assert len(list_events(loaded, asset="r1", unlabelled=True)) == 1


def test_relabelling_replaces_the_verdict_and_unknown_ids_write_nothing(
    use_db: Db, tmp_path: Path
) -> None:
    loaded = _scored_r1(use_db, tmp_path)
    event = int(list_events(loaded, severity="alert").iloc[-1]["id"])
    label_events(loaded, [event], "confirmed")
    label_events(loaded, [event], "ignore", "test run")

    with pytest.raises(LabelsError, match=r"no event with id 9999 in .*events list"):
        label_events(loaded, [event, 9999], "confirmed")

    store = FeedbackStore(use_db.engine, use_db.target, use_db.table("events"))
    stored = store.read()
    assert stored[["asset", "axis", "severity", "start_ts", "end_ts", "verdict", "note"]].to_dict(
        "records"
    ) == [
        {
            "asset": "r1",
            "axis": "a",
            "severity": "alert",
            "start_ts": ts(2),
            "end_ts": ts(4),
            "verdict": "ignore",
            "note": "test run",
        }
    ]
    with pytest.raises(LabelsError, match="verdict 'fine' is not one of confirmed"):
        store.label(list_events(loaded).head(1).assign(model_version="v1"), "fine")


def test_match_verdicts_takes_the_newest_overlapping_verdict_of_the_same_key() -> None:
    t = pd.Timestamp("2026-01-01", tz="UTC")
    s = pd.Timedelta(seconds=1)
    events = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "source_table": "s",
            "asset": ["", "", "", "x"],
            "axis": ["a", "a", "b", "a"],
            "severity": "alert",
            "start_ts": [t, t + 10 * s, t, t],
            "end_ts": [t + 5 * s, t + 20 * s, t + 5 * s, t + 5 * s],
        }
    )
    feedback = pd.DataFrame(
        {
            "source_table": "s",
            "asset": "",
            "axis": "a",
            "severity": "alert",
            "start_ts": [t + 5 * s, t + 4 * s, t + 21 * s],
            "end_ts": [t + 6 * s, t + 9 * s, t + 30 * s],
            "verdict": ["confirmed", "false-positive", "confirmed"],
            "note": [None, "n", None],
            "updated_at": [t + 2 * s, t + 1 * s, t],
        }
    )

    matched = match_verdicts(events, feedback)

    # Event 1 touches both first verdicts (inclusive ends): the newer one wins; event 2 ends
    # before the third verdict starts; event 3 is another axis, event 4 another asset.
    assert matched["verdict"].tolist() == ["confirmed", None, None, None]
    assert matched["note"].tolist() == [None, None, None, None]


CSV = """start,end,asset,axis,kind,severity
2026-01-05T00:00:02Z,2026-01-05T00:00:04Z,r1,a,bearing,high
2026-01-05T00:00:07Z,2026-01-05T00:00:08Z,r2,,overload,
2026-01-05T00:00:09,2026-01-05T00:00:09Z,,b,,low
"""


def test_failure_windows_import_once_and_are_read_per_asset(any_db: Db, tmp_path: Path) -> None:
    path = tmp_path / "failures.csv"
    path.write_text(CSV, encoding="utf-8")
    table = any_db.table("failures")

    first = import_label_csv(any_db.engine, any_db.target, path, table, asset_col="robot")
    again = import_label_csv(any_db.engine, any_db.target, path, table, asset_col="robot")

    assert (first.rows, first.skipped, again.rows, again.skipped) == (3, 0, 0, 3)
    r1 = read_labels(any_db.engine, any_db.target, table, asset_col="robot", asset="r1")
    every = read_labels(any_db.engine, any_db.target, table)
    assert list(r1["start_ts"]) == [ts(2), ts(9)]  # its own window and the one of no asset
    assert r1["axis"].tolist() == ["a", "b"]
    assert r1["kind"].fillna("-").tolist() == ["bearing", "-"]
    assert list(every["start_ts"]) == [ts(2), ts(7), ts(9)]
    assert every["axis"].tolist() == ["a", None, "b"]


def test_labels_of_an_integer_asset_id_are_read_beside_the_rows_for_every_asset(
    any_db: Db,
) -> None:
    # An INTEGER asset column with NULLs (rows for every asset) comes back as floats (7.0).
    table = any_db.table("failures")
    columns = {"start_ts": sa.DateTime(timezone=True), "end_ts": sa.DateTime(timezone=True)}
    frame = pd.DataFrame(
        {"start_ts": [ts(1), ts(4), ts(6)], "end_ts": [ts(2), ts(5), ts(7)], "robot": [7, 8, None]}
    )
    frame["robot"] = frame["robot"].astype("Int64")
    write_chunks(any_db.engine, any_db.target, table, {**columns, "robot": sa.Integer()}, [frame])
    for asset in (7, "7"):
        seven = read_labels(any_db.engine, any_db.target, table, asset_col="robot", asset=asset)
        assert list(seven["start_ts"]) == [ts(1), ts(6)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("begin,end\n1,2\n", r"has no column\(s\) \['start_ts'\].*it needs start and end"),
        (
            "start,end\n2026-01-05T00:00:00Z,2026-01-05T00:00:01Z\nyesterday,2026-01-05\n",
            r"line 3: start 'yesterday' is not an ISO-8601 time",
        ),
        (
            "start,end\n2026-01-05T00:00:09Z,2026-01-05T00:00:01Z\n",
            r"line 2: end is before start; swap them",
        ),
    ],
)
def test_a_malformed_label_csv_is_refused_and_nothing_is_written(
    sqlite_db: Db, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(LabelsError, match=message):
        import_label_csv(sqlite_db.engine, sqlite_db.target, path, "failures")

    assert not sa.inspect(sqlite_db.engine).has_table("failures")


def test_assets_into_a_labels_table_without_an_asset_column_are_refused(
    sqlite_db: Db, tmp_path: Path
) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE failures (start_ts TEXT, end_ts TEXT, axis TEXT)"))
    path = tmp_path / "failures.csv"
    path.write_text(CSV, encoding="utf-8")

    with pytest.raises(LabelsError, match=r"has no 'asset' column; add it"):
        import_label_csv(sqlite_db.engine, sqlite_db.target, path, "failures")


def test_events_commands_on_the_command_line(sqlite_db: Db, tmp_path: Path) -> None:
    _publish(tmp_path, "r1")
    append_asset_rows(sqlite_db, "r1", TWO_INCIDENTS)
    path = tmp_path / "failures.csv"
    path.write_text(CSV, encoding="utf-8")
    config = make_project(
        tmp_path,
        "data: {table: fleet, asset_col: asset, axes: [a, b]}\n"
        "events: {table: events, merge_gap_seconds: 0}\n"
        "labels: {table: failures}\nfleet: {table: fleet_state, workers: 1}\n",
    )
    url = sqlite_db.url
    scored = run_cli(
        "orchestrate.py",
        "score",
        "--asset",
        "r1",
        "--end",
        ts(12).isoformat(),
        config=config,
        db_url=url,
    )
    assert scored.code == 0, scored.stderr

    listed = run_cli("orchestrate.py", "events", "list", "--json", config=config, db_url=url)
    ids = [e["id"] for e in listed.json()["events"]]
    labelled = run_cli(
        "orchestrate.py",
        "events",
        "label",
        str(ids[-1]),
        "--as",
        "confirmed",
        "--note",
        "seen",
        "--json",
        config=config,
        db_url=url,
    )
    text = run_cli("orchestrate.py", "events", "list", "--unlabelled", config=config, db_url=url)
    imported = run_cli(
        "orchestrate.py", "events", "import", str(path), "--json", config=config, db_url=url
    )
    unknown = run_cli(
        "orchestrate.py", "events", "label", "999", "--as", "ignore", config=config, db_url=url
    )
    negative = run_cli(
        "orchestrate.py", "events", "list", "--limit", "-1", config=config, db_url=url
    )
    no_table = run_cli(
        "orchestrate.py",
        "events",
        "import",
        str(path),
        "--set",
        "labels.table=null",
        config=config,
        db_url=url,
    )

    assert listed.code == 0 and len(ids) == 3
    assert labelled.code == 0
    event = labelled.json()["events"][0]
    assert (event["verdict"], event["note"], event["start_ts"]) == (
        "confirmed",
        "seen",
        ts(2).isoformat(),
    )
    assert text.code == 0 and len(text.stdout.splitlines()) == 4  # header, rule, two unlabelled
    assert imported.code == 0 and imported.json()["rows"] == 3
    assert negative.code == 2 and "'-1' is not a whole number >= 1" in negative.stderr
    assert unknown.code == 3 and "no event with id 999" in unknown.stderr
    assert no_table.code == 2 and "labels.table: not set" in no_table.stderr


def test_import_into_a_labels_table_without_the_optional_columns(
    any_db: Db, tmp_path: Path
) -> None:
    table = any_db.table("failures")
    columns = {"start_ts": sa.DateTime(timezone=True), "end_ts": sa.DateTime(timezone=True)}
    write_chunks(any_db.engine, any_db.target, table, columns, [pd.DataFrame(columns=[*columns])])
    path = tmp_path / "failures.csv"
    path.write_text("start,end\n2026-01-05T00:00:02Z,2026-01-05T00:00:04Z\n", encoding="utf-8")
    imported = import_label_csv(any_db.engine, any_db.target, path, table)
    again = import_label_csv(any_db.engine, any_db.target, path, table)
    assert (imported.rows, again.rows, again.skipped) == (1, 0, 1)
    path.write_text("start,end,axis\n2026-01-05T00:00:05Z,2026-01-05T00:00:06Z,a\n")
    with pytest.raises(LabelsError, match=r"values in \['axis'\] but labels table .* no such"):
        import_label_csv(any_db.engine, any_db.target, path, table)


def test_verdict_windows_from_a_read_of_every_asset_equal_each_assets_own_read(
    use_db: Db, tmp_path: Path
) -> None:
    """A fleet task reads the verdicts of all assets once and takes each asset's from them:
    the same windows as the asset's own read (and none for an asset without verdicts)."""
    loaded = _config(use_db, tmp_path)
    for asset in ("r1", "r2"):
        _publish(tmp_path, asset)
        append_asset_rows(use_db, asset, TWO_INCIDENTS)
        run_scoring(loaded, asset=asset, end=ts(12).to_pydatetime())
    events = list_events(loaded)
    by_asset = {asset: events[events["asset"] == asset]["id"] for asset in ("r1", "r2")}
    label_events(loaded, [int(by_asset["r1"].iloc[0])], "confirmed")
    label_events(loaded, [int(i) for i in by_asset["r2"]], "false-positive", "noise")
    store = FeedbackStore(use_db.engine, use_db.target, use_db.table("events"))
    table = loaded.config.data.table
    stored = store.read(table)
    assert set(stored["asset"]) == {"r1", "r2"}
    for asset in ("r1", "r2", "r3"):
        own = store.verdict_windows(table, asset, VERDICTS)
        shared = store.verdict_windows(table, asset, VERDICTS, stored=stored)
        pd.testing.assert_frame_equal(shared, own)
        assert len(own) == {"r1": 1, "r2": len(by_asset["r2"]), "r3": 0}[asset]
    # No verdicts: each call gets a frame of its own (the empty one is made once).
    none = store.verdict_windows(table, "r3", VERDICTS, stored=stored)
    none.loc[0] = [ts(1), ts(2), "a", "alert", "confirmed"]
    assert store.verdict_windows(table, "r3", VERDICTS, stored=stored).empty
