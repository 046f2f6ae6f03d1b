"""The morning digest: event states, ordering, top events, sections, rendering, the command.

Score runs use the flat version of ``scoring_helpers`` (value - 1 is the residual, MinC = 1,
MaxC = 2, runs of 2 samples, samples 1 s apart from T0), so every event is known exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db
from PIL import Image
from scoring_helpers import T0, publish_linear_version, ts

from Database import write_chunks
from Fleet import AssetOutcome, FleetStateStore
from Orchestration import load_config
from Orchestration.digest import DigestContext, run_digest
from Orchestration.fleet_scoring import run_fleet_scoring
from Reports import (
    DigestImages,
    DigestSection,
    build_digest,
    classify_events,
    needs_plot,
    overview_matrix,
    pick_top_events,
    render_html,
    render_text,
)


def _event(asset, axis, severity, start, end, ratio, contributors=None):
    return {
        "asset": asset,
        "axis": axis,
        "severity": severity,
        "start_ts": ts(start),
        "end_ts": ts(end),
        "duration_s": float(end - start),
        "samples": end - start + 1,
        "peak_ts": ts(start),
        "ratio": ratio,
        "side": "above",
        "actual": 1.0 + ratio,
        "expected": 1.0,
        "peak_residual": ratio,
        "threshold": 1.0,
        "contributors": contributors,
        "model_version": "v1",
    }


EVENTS = pd.DataFrame(
    [
        _event("r1", "a", "alert", 1, 2, 1.5),  # before since: closed
        _event("r1", "a", "alert", 4, 5, 2.5),
        _event("r1", "a", "error", 4, 5, 1.25),
        _event("r2", "a", "alert", 8, 9, 1.5),  # reaches r2's newest sample: ongoing
        _event("r3", "b", "alert", 6, 7, 4.0),
    ]
)
NEWEST = {"r1": ts(9), "r2": ts(9), "r3": ts(12)}
FLEET = pd.DataFrame(
    [
        {"asset": "r1", "status": "trained", "version": "v1", "trained_at": T0},
        {"asset": "r2", "status": "trained", "version": "v2", "trained_at": T0},
        {"asset": "r3", "status": "failed", "version": "v1", "trained_at": T0, "reason": "boom"},
        {"asset": "r4", "status": "needs-data", "version": None, "trained_at": None, "missing": 7},
        {"asset": "r5", "status": "trained", "version": "v1", "trained_at": T0},
    ]
)


def _digest(**options):
    return build_digest(
        EVENTS,
        source_table="fleet",
        since=ts(3),
        until=ts(12),
        newest=NEWEST,
        fleet=FLEET,
        now=T0 + pd.Timedelta(days=2),
        top_events=options.pop("top_events", 6),
        **options,
    )


def test_event_states_ongoing_new_closed() -> None:
    states = classify_events(EVENTS, ts(3), NEWEST)
    assert states.tolist() == ["closed", "new", "new", "ongoing", "new"]
    assert classify_events(EVENTS, ts(3), {}).tolist() == ["closed", "new", "new", "new", "new"]


def test_digest_orders_assets_and_events_worst_first() -> None:
    digest = _digest()
    assert [a.asset for a in digest.assets] == ["r1", "r3", "r2"]
    r1 = digest.assets[0]
    assert [(e["severity"], e["ratio"], e["state"]) for e in r1.events] == [
        ("error", 1.25, "new"),
        ("alert", 2.5, "new"),
        ("alert", 1.5, "closed"),
    ]
    assert r1.counts == {
        "ongoing": {"alert": 0, "error": 0, "sensor": 0, "drift": 0},
        "new": {"alert": 1, "error": 1, "sensor": 0, "drift": 0},
        "closed": {"alert": 1, "error": 0, "sensor": 0, "drift": 0},
    }
    assert digest.assets[2].events[0]["state"] == "ongoing"
    assert r1.model_age_days == 2.0
    # The alert episode around r1's error is the same incident: not a top event of its own.
    assert [(e["asset"], e["severity"], e["start"]) for e in digest.top] == [
        ("r1", "error", ts(4).isoformat()),
        ("r3", "alert", ts(6).isoformat()),
        ("r1", "alert", ts(1).isoformat()),
        ("r2", "alert", ts(8).isoformat()),
    ]
    assert [e["asset"] for e in _digest(top_events=2).top] == ["r1", "r3"]
    assert [(r["asset"], r["status"]) for r in digest.attention] == [
        ("r3", "failed"),
        ("r4", "needs-data"),
    ]
    assert digest.quiet == ["r4", "r5"]
    assert digest.totals["new"] == {"alert": 2, "error": 1, "sensor": 0, "drift": 0}


def test_a_machine_event_is_drawn_once_with_its_top_axis() -> None:
    shares = '[{"axis": "a", "share": 0.7}, {"axis": "b", "share": 0.3}]'
    events = pd.DataFrame(
        [
            _event("r1", "*", "error", 4, 6, 3.0, shares),
            _event("r1", "a", "error", 4, 6, 1.5),
            _event("r1", "b", "error", 4, 6, 1.2),
            _event("r1", "*", "error", 20, 21, 1.1, None),  # no contributors: nothing to draw
        ]
    )
    top = pick_top_events(
        build_digest(
            events,
            source_table="t",
            since=T0,
            until=ts(30),
            newest={},
            fleet=None,
            now=T0,
            top_events=5,
        ).top,
        5,
    )
    assert [e["axis"] for e in top] == ["*", "a", "b", "*"]
    assert needs_plot(top) == [True, False, True, False]


def test_sections_show_when_a_source_has_rows_and_render_escaped() -> None:
    drift = DigestSection(
        "drift", "Drift", ["asset", "axis", "days to threshold"], [["r1", "a", 3.5]]
    )
    digest = _digest(sections=[drift])
    payload = digest.to_dict()
    assert payload["sections"] == [
        {
            "key": "drift",
            "title": "Drift",
            "note": "",
            "rows": [{"asset": "r1", "axis": "a", "days to threshold": 3.5}],
        }
    ]
    assert [e["asset"] for e in payload["top_events"]] == ["r1", "r3", "r1", "r2"]
    html = render_html(digest, DigestImages())
    assert 'id="section-drift"' in html and "<td>3.5</td>" in html
    assert "<section" not in html.lower()
    assert 'id="section-' not in render_html(_digest(), DigestImages())
    hostile = EVENTS.assign(asset=EVENTS["asset"].replace("r3", "<script>x</script>"))
    page = render_html(
        build_digest(
            hostile,
            source_table="t",
            since=ts(3),
            until=ts(12),
            newest={},
            fleet=None,
            now=T0,
            top_events=3,
        ),
        DigestImages(),
    )
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_text_digest_leads_with_the_worst_event() -> None:
    text = render_text(_digest())
    lines = text.splitlines()
    assert lines[0] == "Morning digest of fleet: 2026-01-05 00:00:03 to 2026-01-05 00:00:12 UTC"
    assert lines[1] == "1 error and 4 alert events on 3 asset(s)"
    assert lines[3] == "WORST: r1 a error (new) from 2026-01-05 00:00:04 for 1.0s, ratio 1.25 above"
    assert "  r3: failed boom" in lines and "  r4: needs-data needs 7 more samples" in lines
    assert lines[-1] == "Quiet: r4, r5"
    short = render_text(_digest(), assets=1).splitlines()
    assert "... and 2 more assets with events" in short and not any(
        line.startswith("r3 (") for line in short
    )


def test_a_digest_before_any_score_run_says_so(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    loaded = load_config(make_project(tmp_path), ["data.table=s", "data.axes=[a, b]"])
    now = T0 + pd.Timedelta(hours=1)
    digest = run_digest(loaded, now=now).digest
    assert (digest.since, digest.until) == (now - pd.Timedelta(hours=24), now)
    assert digest.note == (
        "no score run has read s yet: run python orchestrate.py score (the period ends now)"
    )
    text = render_text(digest).splitlines()
    assert text[3:6] == [digest.note, "", "No alert or error events in the period."]


def test_overview_counts_alert_episodes_per_asset_and_axis() -> None:
    matrix = overview_matrix(EVENTS, ["r1", "r2", "r3", "r5"], ["a", "b"], limit=3)
    assert matrix.index.tolist() == ["r1", "r2", "r3"]
    assert matrix.to_dict("index") == {
        "r1": {"a": 2, "b": 0},
        "r2": {"a": 1, "b": 0},
        "r3": {"a": 0, "b": 1},
    }


def _append(db: Db, asset: str, residuals: list[float]) -> None:
    frame = pd.DataFrame(
        {
            "ts": [ts(i) for i in range(len(residuals))],
            "asset": asset,
            "a": [1.0 + r for r in residuals],
            "b": 1.0,
        }
    )
    columns = {"ts": sa.DateTime(timezone=True), "asset": sa.Text(), "a": sa.Float(53)}
    columns["b"] = sa.Float(53)
    write_chunks(db.engine, db.target, db.table("fleet"), columns, [frame], if_exists="append")


@pytest.fixture
def scored_fleet(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DB_URL", any_db.url)
    loaded = load_config(
        make_project(tmp_path),
        [
            f"data.table={any_db.table('fleet')}",
            "data.asset_col=asset",
            "data.axes=[a, b]",
            "data.units={a: A}",
            f"events.table={any_db.table('events')}",
            f"fleet.table={any_db.table('fleet_state')}",
            "events.merge_gap_seconds=0",
            "fleet.workers=1",
            "report.context_minutes=1",
        ],
    )
    for asset, residuals in {
        "r1": [0, 1.5, 1.5, 0, 2.5, 2.5, 0, 0, 0, 0],
        "r2": [0, 0, 0, 0, 0, 0, 0, 0, 1.5, 1.5],
        "r3": [0] * 10,
    }.items():
        publish_linear_version(tmp_path / "registry" / asset, ["a", "b"])
        _append(any_db, asset, residuals)
    run_fleet_scoring(loaded)
    FleetStateStore(
        any_db.engine, any_db.target, any_db.table("fleet_state"), any_db.table("fleet")
    ).write(
        [
            AssetOutcome("r1", "trained", version="v1", trained_at=T0.isoformat()),
            AssetOutcome("r2", "trained", version="v1", trained_at=T0.isoformat()),
            AssetOutcome("r3", "trained", version="v1", trained_at=T0.isoformat()),
            AssetOutcome("r4", "needs-data", samples=5, missing=995),
        ],
        "test",
    )
    return loaded


def test_digest_of_a_scored_fleet(scored_fleet) -> None:
    seen: list[DigestContext] = []

    def health(context: DigestContext) -> DigestSection | None:
        seen.append(context)
        return None  # nothing to show: the section is absent

    def failure(context: DigestContext) -> DigestSection | None:
        raise RuntimeError("the predictor is down")

    run = run_digest(
        scored_fleet,
        since=ts(2).to_pydatetime(),
        now=T0 + pd.Timedelta(days=1),
        sources=[health, failure],
    )
    digest = run.digest
    assert (digest.since, digest.until) == (ts(2), ts(9))
    assert [(e["asset"], e["severity"], e["state"], e["ratio"]) for e in digest.top] == [
        ("r1", "error", "new", 1.25),
        ("r1", "alert", "closed", 1.5),
        ("r2", "alert", "ongoing", 1.5),
    ]
    assert [a.asset for a in digest.assets] == ["r1", "r2"]
    assert digest.quiet == ["r3", "r4"]
    assert [r["asset"] for r in digest.attention] == ["r4"]
    assert digest.sections == [] and seen[0].assets == ["r1", "r2", "r3", "r4"]
    seen_events = seen[0].events.sort_values(["asset", "start_ts", "severity"])
    assert [(e.asset, e.axis, e.severity) for e in seen_events.itertuples()] == [
        ("r1", "a", "alert"),
        ("r1", "a", "alert"),
        ("r1", "a", "error"),
        ("r2", "a", "alert"),
    ]
    assert digest.assets[0].model_age_days == 1.0
    for png in run.images.events:
        assert Image.open(io.BytesIO(png)).size == (720, 420)
    assert Image.open(io.BytesIO(run.images.overview)).format == "PNG"

    later = run_digest(scored_fleet, now=T0 + pd.Timedelta(days=1), asset="r2")
    assert [e["asset"] for e in later.digest.top] == ["r2"]


def test_report_command_writes_a_self_contained_page(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    frame = pd.DataFrame({"ts": [ts(i) for i in range(8)], "a": [1, 3.5, 3.5, 1, 1, 1, 1, 1.0]})
    frame["b"] = 1.0
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(sqlite_db.engine, sqlite_db.target, "s", columns, [frame], if_exists="replace")
    config = make_project(
        tmp_path, "data: {table: s, axes: [a, b]}\nevents: {merge_gap_seconds: 0}\n"
    )
    url = sqlite_db.url
    assert run_cli("orchestrate.py", "score", config=config, db_url=url).code in {0, 10}
    page = tmp_path / "out" / "digest.html"
    done = run_cli(
        "orchestrate.py", "report", "--json", "--output", str(page), config=config, db_url=url
    )
    assert done.code == 0, done.stderr
    payload = done.json()
    top = payload["top_events"][0]
    assert (top["axis"], top["severity"], top["ratio"], top["start"]) == (
        "a",
        "error",
        1.25,
        ts(1).isoformat(),
    )
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    # One top event (the alert around it is the same incident), then the overview heat map.
    assert len(images) == 2
    assert Image.open(io.BytesIO(base64.b64decode(images[0]))).size == (720, 420)
    assert Image.open(io.BytesIO(base64.b64decode(images[1]))).format == "PNG"
    headline = re.search(r'id="headline">(.*?)</p>', html, re.S).group(1)
    assert "axis <b>a</b>" in headline and "ratio <b>1.25</b>" in headline

    assert payload["assets"][0]["fleet"]["version"] == "v1"  # a one-machine table: its latest
    assert payload["assets"][0]["model_age_days"] is not None
    text = run_cli("orchestrate.py", "report", config=config, db_url=url)
    assert text.code == 0
    assert (
        "WORST: a error (ongoing) from 2026-01-05 00:00:01 for 1.0s, ratio 1.25 above"
        in (text.stdout)
        or "WORST: a error (new) from 2026-01-05 00:00:01 for 1.0s, ratio 1.25 above" in text.stdout
    )
    bad = run_cli("orchestrate.py", "report", "--since", "yesterday", config=config, db_url=url)
    assert bad.code == 2 and "neither a duration" in bad.stderr
    folder = run_cli(
        "orchestrate.py", "report", "--output", str(tmp_path), config=config, db_url=url
    )
    assert folder.code == 8 and "is a folder" in folder.stderr
    one_machine = run_cli("orchestrate.py", "report", "--asset", "r1", config=config, db_url=url)
    assert one_machine.code == 2 and "data.asset_col is not set" in one_machine.stderr


def test_digest_shows_kept_back_versions_and_failure_risk(scored_fleet, any_db: Db) -> None:
    from ModelRegistry import ModelRegistry
    from Prediction.store import RiskStore

    root = scored_fleet.path(scored_fleet.config.registry.root_dir)
    r1 = ModelRegistry(root / "r1")
    r1.promote("v1")
    publish_linear_version(root / "r1", ["a", "b"])  # v2, kept back by the gate
    r1.record_decision("v2", {"promoted": False, "reason": "alert events 6 > 4 allowed"})
    ModelRegistry(root / "r2").promote("v1")  # r2's newest version is live: no news
    buckets = pd.DatetimeIndex([ts(3), ts(5), ts(7)])
    store = RiskStore(
        any_db.engine, any_db.target, any_db.table("risk"), any_db.table("fleet"), "r2"
    )
    store.write(pd.Series([0.2, 0.9, 0.4], index=buckets), "p1", batch_rows=2)
    other = RiskStore(
        any_db.engine, any_db.target, any_db.table("risk"), any_db.table("fleet"), "r3"
    )
    other.write(pd.Series([0.1], index=buckets[:1]), "p1", batch_rows=2)
    config = scored_fleet.config
    predictor = config.predictor.model_copy(update={"table": any_db.table("risk")})
    loaded = dataclasses.replace(
        scored_fleet, config=config.model_copy(update={"predictor": predictor})
    )

    digest = run_digest(loaded, since=ts(2).to_pydatetime(), now=T0 + pd.Timedelta(days=1)).digest

    sections = {section.key: section for section in digest.sections}
    assert sections["failure"].rows == [
        ["r2", 0.4, 0.9, ts(5).isoformat(), "p1"],
        ["r3", 0.1, 0.1, ts(3).isoformat(), "p1"],
    ]
    assert sections["promotion"].rows == [["r1", "v2", "v1", "alert events 6 > 4 allowed"]]


def test_drift_and_sensor_events_are_counted_not_a_crash() -> None:
    events = pd.concat(
        [
            EVENTS,
            pd.DataFrame(
                [
                    _event("r1", "b", "sensor", 6, 8, float("nan")),
                    _event("r2", "a", "drift", 5, 9, float("nan")),
                ]
            ),
        ],
        ignore_index=True,
    )
    digest = build_digest(
        events,
        source_table="fleet",
        since=ts(3),
        until=ts(12),
        newest=NEWEST,
        fleet=FLEET,
        now=T0 + pd.Timedelta(days=2),
        top_events=6,
    )
    assert digest.totals["new"] == {"alert": 2, "error": 1, "sensor": 1, "drift": 0}
    assert digest.totals["ongoing"] == {"alert": 1, "error": 0, "sensor": 0, "drift": 1}
    text = render_text(digest)
    assert "r1 (ongoing 0E/0A, new 1E/1A, closed 0E/1A, 1 sensor" in text
    assert "r2 (ongoing 0E/1A, new 0E/0A, closed 0E/0A, 1 drift" in text


def test_digest_shows_drifting_axes_and_sensor_health_of_the_live_versions(
    scored_fleet, any_db: Db
) -> None:
    from Scoring.drift.store import drift_table

    root = scored_fleet.path(scored_fleet.config.registry.root_dir)
    finding = {"check": "flat", "grade": "low", "reason": "1 repeats", "action": "check it"}
    publish_linear_version(
        root / "r3",
        ["a", "b"],
        extra_meta={
            "health": {
                "a": {"grade": "high", "findings": []},
                "b": {"grade": "low", "findings": [finding]},
            },
            "health_skipped": ["b"],
        },
    )
    state = drift_table(any_db.table("events_drift"))
    with any_db.engine.begin() as conn:
        state.create(conn, checkfirst=True)
        conn.execute(
            state.insert(),
            [
                {
                    "source_table": any_db.table("fleet"),
                    "asset": asset,
                    "axis": "a",
                    "model_version": "v1",
                    "is_drifting": drifting,
                    "drift_direction": direction,
                    "drifting_since": since,
                    "cusum_pos": 6.0,
                    "cusum_neg": 0.0,
                    "ewma_value": 1.0,
                    "last_sample_s": 0.0,
                    "open_sum": 0.0,
                    "open_count": 0,
                    "run_id": "r",
                    "updated_at": T0.to_pydatetime(),
                }
                for asset, drifting, direction, since in (
                    ("r2", True, "up", ts(4).to_pydatetime()),
                    ("r1", False, None, None),
                )
            ],
        )

    digest = run_digest(
        scored_fleet, since=ts(2).to_pydatetime(), now=T0 + pd.Timedelta(days=1)
    ).digest

    sections = {section.key: section for section in digest.sections}
    assert sections["drift"].rows == [["r2", "a", "up", ts(4).isoformat(), "v1"]]
    assert sections["health"].rows == [["r3", "b", "low", "left out", "flat: 1 repeats"]]


def test_a_one_machine_digest_ages_the_live_version_not_a_kept_back_one(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ModelRegistry import ModelRegistry
    from Orchestration.context import open_database
    from Orchestration.digest import _fleet_state

    monkeypatch.setenv("DB_URL", sqlite_db.url)
    root = tmp_path / "registry"
    publish_linear_version(root, ["a", "b"])
    ModelRegistry(root).promote("v1")
    publish_linear_version(root, ["a", "b"])  # v2 is latest, kept back by the gate
    loaded = load_config(make_project(tmp_path), ["data.table=s", "data.axes=[a, b]"])
    session = open_database(loaded, access="read")
    try:
        assert _fleet_state(loaded, session, None)["version"].tolist() == ["v1"]
    finally:
        session.close()


def test_coinciding_alarms_section_pairs_the_axes_of_each_asset(scored_fleet) -> None:
    """From the period's events: machine-channel (*) and drift rows left out, alert and error
    of one axis joined; r1's a and b come together 3 times in 3 (all 6 episodes), c once with
    them (1 of 4 + 1 of 3 episodes: 2 of 7 are together, under half); r2 has one pair at 4 of 6."""
    from Orchestration.digest_sections import coinciding_section

    rows = []
    for asset, axis, severity, minutes in [
        *[("r1", "a", "alert", m) for m in (0, 30, 60)],
        *[("r1", "a", "error", m) for m in (0, 30, 60)],
        *[("r1", "b", "alert", m) for m in (1, 31, 61)],
        *[("r1", "c", "alert", m) for m in (2, 90, 120, 150)],
        *[("r1", "*", "error", m) for m in (0, 30, 60, 90)],
        *[("r1", "d", "drift", m) for m in (0, 30, 60)],
        *[("r2", "x", "alert", m) for m in (0, 30, 45)],
        *[("r2", "y", "alert", m) for m in (1, 31, 100)],
    ]:
        start = T0 + pd.Timedelta(minutes=minutes)
        rows.append((asset, axis, severity, start, start + pd.Timedelta(minutes=5)))
    events = pd.DataFrame(rows, columns=["asset", "axis", "severity", "start_ts", "end_ts"])
    context = DigestContext(scored_fleet, None, T0, ts(9), ["r1", "r2"], events)

    section = coinciding_section(context)

    assert section is not None and section.key == "coinciding"
    assert section.rows == [["r1", "a and b", 100, 6, 6], ["r2", "x and y", 67, 4, 6]]
    assert coinciding_section(dataclasses.replace(context, events=events.iloc[:0])) is None


def test_time_to_threshold_section_projects_each_assets_live_version_from_stored_levels(
    scored_fleet, any_db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """r1: axis a rises 0.1 a day to 1.0 at its newest block (MaxC 2): 10 days; b is flat.
    r2 lags a day behind and rises 0.25 a day to 1.5: 2 days, counted from its own newest
    block ("as of"). r3's version has an unreadable drift.json (logged, left out); r4 has no
    version. Without the levels table the section is absent."""
    from Orchestration.digest_sections import time_to_threshold_section
    from Scoring.drift import AxisBaseline, DriftBaselines, DriftParameters
    from Scoring.drift.store import levels_table

    def sources(context: DigestContext) -> DigestSection | None:
        return time_to_threshold_section(context)

    def digest_rows() -> list[list] | None:
        digest = run_digest(scored_fleet, now=T0 + pd.Timedelta(days=1), sources=[sources])
        found = {s.key: s for s in digest.digest.sections}
        return found["trend"].rows if "trend" in found else None

    root = scored_fleet.path(scored_fleet.config.registry.root_dir)
    baselines = DriftBaselines(
        DriftParameters(), {a: AxisBaseline(0.0, 0.1, 100) for a in ("a", "b")}
    ).to_dict()
    v1 = publish_linear_version(root / "r1", ["a", "b"], drift=baselines)
    v2 = publish_linear_version(root / "r2", ["a", "b"], drift=baselines)
    publish_linear_version(root / "r3", ["a", "b"], drift={"parameters": {}, "axes": "?"})
    assert digest_rows() is None  # no levels table yet

    config = scored_fleet.config
    table = levels_table(config.drift.table_for(config.events.table))
    newest = int(T0.timestamp() // 3600) - 1  # the hour before T0
    rows = []
    for asset, version, last, start, per_day in (
        ("r1", v1, newest, 1.0, 0.1),
        ("r2", v2, newest - 24, 1.5, 0.25),
        ("r3", "v2", newest, 1.0, 0.1),
    ):
        for block in range(last - 47, last + 1):
            for axis, level in (("a", start + per_day * (block - last) / 24), ("b", 0.0)):
                rows.append(
                    {
                        "source_table": config.data.table,
                        "asset": asset,
                        "axis": axis,
                        "model_version": version,
                        "block": block,
                        "sum": level * 100,
                        "count": 100,
                    }
                )
    with any_db.engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)

    with caplog.at_level("WARNING"):
        found = digest_rows()

    def as_of(block: int) -> str:
        return pd.Timestamp((block + 0.5) * 3600, unit="s", tz="UTC").isoformat()

    assert found == [
        ["r2", "a", 2.0, "2.0 to 2.0", "MaxC", as_of(newest - 24), v2],
        ["r1", "a", 10.0, "10.0 to 10.0", "MaxC", as_of(newest), v1],
    ]
    assert any("time to threshold of r3" in m and "retrain" in m for m in caplog.messages)
