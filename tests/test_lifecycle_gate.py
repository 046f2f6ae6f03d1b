"""The promotion policy and the replay gate: what becomes champion, what is kept back, and why.

Versions are hand-published linear ones (value 1 expected, so the residual is value − 1) with
chosen MinC, on a table of known bursts; every count below is exact.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db
from scoring_helpers import (
    T0,
    append_samples,
    loaded_config,
    publish_linear_version,
    stored_events,
    training_project,
    ts,
    use_database,
)

from Database import write_chunks
from Labels import read_labels
from ModelRegistry import ModelRegistry
from Orchestration import run_training
from Orchestration.context import open_database
from Orchestration.evaluation import _episodes, dry_score, dry_scores
from Orchestration.promotion import decide_promotion
from Orchestration.report import registry_show
from Orchestration.scoring import model_of, run_scoring


def _bursts(n: int) -> list[float]:
    """Axis a: three bursts of 1.5 (2 samples) at 10, 20, 30 and three of 0.7 at 40, 50, 60.

    MinC 1 sees 3 alert events, MinC 0.5 sees 6 (twice the alarm rate), MinC 1.6 none.
    """
    residual = [0.0] * n
    for start, value in ((10, 1.5), (20, 1.5), (30, 1.5), (40, 0.7), (50, 0.7), (60, 0.7)):
        residual[start] = residual[start + 1] = value
    return residual


@pytest.fixture
def lineage(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_database(any_db, monkeypatch)
    append_samples(any_db, "s", {"a": _bursts(70), "b": [0.0] * 70})
    root = tmp_path / "registry"
    publish_linear_version(root, ["a", "b"])  # v1: MinC 1
    return ModelRegistry(root)


def _decide(
    db: Db, folder: Path, registry: ModelRegistry, *overrides: str, labelled: bool = False
) -> dict:
    loaded = loaded_config(db, folder, *overrides)
    session = open_database(loaded, access="read")
    try:
        labels = None
        if labelled:
            labels = read_labels(session.engine, session.target, loaded.config.labels.table)
        candidate = registry.list_versions()[-1].version
        champion = registry.resolve("champion").name if candidate != "v1" else None
        if champion == candidate:  # no alias yet: the champion is the version before
            champion = registry.list_versions()[-2].version
        return decide_promotion(loaded, session, registry, candidate, champion, labels=labels)
    finally:
        session.close()


def test_the_first_version_becomes_champion_at_once_whatever_the_policy(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry
) -> None:
    decision = _decide(any_db, tmp_path, lineage, "registry.promote=manual")
    assert (decision["promoted"], decision["reason"]) == (True, "the first version of its lineage")
    assert lineage.aliases().to_dict() == {"champion": "v1", "previous": None, "pins": []}


def test_a_candidate_that_doubles_the_alarm_rate_is_not_promoted(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry
) -> None:
    lineage.promote("v1")
    publish_linear_version(lineage.root_dir, ["a", "b"], min_c=0.5)  # v2: 6 events, not 3

    decision = _decide(any_db, tmp_path, lineage)

    assert decision["promoted"] is False
    assert decision["alarms"] == {
        "champion": 3,
        "candidate": 6,
        "allowed": 4,  # 3 × 1.5, rounded down
        "champion_per_day": pytest.approx(3 / (69 / 86_400)),
        "candidate_per_day": pytest.approx(6 / (69 / 86_400)),
    }
    assert decision["channels"] == {
        "a": {"champion": 3, "candidate": 6, "appear": 3, "disappear": 0}
    }
    assert decision["reason"] == (
        "6 alarm events on the replay against the champion's 3 (at most 4 allowed by "
        "registry.max_alarm_increase 0.5)"
    )
    assert decision["replay"]["samples"] == 70
    assert lineage.aliases().champion == "v1"
    assert lineage.decision("v2") == {**decision, "decided_at": decision["decided_at"]}
    loaded = loaded_config(any_db, tmp_path)
    report = run_scoring(loaded, start=T0.to_pydatetime())
    assert report.version == "v1"  # scoring keeps the champion
    assert len(stored_events(any_db)) == 3
    # a looser limit lets the same candidate through
    assert _decide(any_db, tmp_path, lineage, "registry.max_alarm_increase=1")["promoted"]
    assert lineage.aliases().to_dict() == {"champion": "v2", "previous": "v1", "pins": []}


def test_the_gate_writes_no_event_and_no_state(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry
) -> None:
    publish_linear_version(lineage.root_dir, ["a", "b"])
    _decide(any_db, tmp_path, lineage)
    with any_db.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names(schema=any_db.schema)
    assert [t for t in tables if t.startswith("events")] == []


def test_a_candidate_within_the_limit_is_promoted_and_the_old_champion_becomes_previous(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry
) -> None:
    lineage.promote("v1")
    publish_linear_version(lineage.root_dir, ["a", "b"], min_c=0.6, t_long=3)  # v2: none

    decision = _decide(any_db, tmp_path, lineage)

    assert decision["promoted"] is True
    assert decision["channels"]["a"] == {
        "champion": 3,
        "candidate": 0,
        "appear": 0,
        "disappear": 3,
    }
    assert lineage.aliases().to_dict() == {"champion": "v2", "previous": "v1", "pins": []}


def _labels_table(db: Db, windows: list[tuple[int, int]]) -> None:
    frame = pd.DataFrame(
        {
            "start_ts": [ts(a) for a, _ in windows],
            "end_ts": [ts(b) for _, b in windows],
            "axis": ["a"] * len(windows),
        }
    )
    columns = {
        "start_ts": sa.DateTime(timezone=True),
        "end_ts": sa.DateTime(timezone=True),
        "axis": sa.String(64),
    }
    write_chunks(db.engine, db.target, db.table("labels"), columns, [frame])


def test_a_candidate_that_loses_a_labelled_event_is_not_promoted(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry
) -> None:
    _labels_table(any_db, [(20, 21)])
    lineage.promote("v1")
    publish_linear_version(lineage.root_dir, ["a", "b"], min_c=1.6)  # v2: fewer alarms, none

    decision = _decide(
        any_db, tmp_path, lineage, f"labels.table={any_db.table('labels')}", labelled=True
    )

    assert decision["promoted"] is False
    start, end = ts(20).isoformat(), ts(21).isoformat()
    assert decision["reason"] == (
        f"loses 1 labelled event(s) the champion finds: {start}..{end} on a"
    )
    labels = decision["labels"]
    assert labels["lost"] == [f"{start}..{end} on a"]
    assert (labels["champion"]["found"], labels["candidate"]["found"]) == (1, 0)
    assert labels["champion"]["event_precision"] == pytest.approx(1 / 3)
    assert labels["candidate"]["event_recall"] == 0.0
    assert decision["alarms"]["candidate"] == 0
    assert lineage.aliases().champion == "v1"


@pytest.mark.parametrize(("policy", "promoted"), [("auto", True), ("manual", False)])
def test_auto_always_and_manual_never_promotes(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry, policy: str, promoted: bool
) -> None:
    publish_linear_version(lineage.root_dir, ["a", "b"], min_c=0.1)  # v2: far more alarms
    decision = _decide(any_db, tmp_path, lineage, f"registry.promote={policy}")
    assert decision["promoted"] is promoted
    assert "alarms" not in decision  # no replay
    # a registry from before aliases followed `latest`: a version kept back must not go live
    assert lineage.resolve("champion").name == ("v2" if promoted else "v1")


def test_training_runs_the_gate_and_reports_it(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = training_project(sqlite_db, tmp_path, monkeypatch)
    first = run_training(loaded)
    assert list(first.timings)[-2:] == ["register", "promote"]
    assert first.promotion["promoted"] and first.promotion["champion"] is None
    second = run_training(loaded)  # the same data and config: the same alarms
    assert second.promotion["promoted"] is True
    assert second.promotion["champion"] == "v1"
    assert second.promotion["alarms"]["candidate"] == second.promotion["alarms"]["champion"]
    # trained on the whole window: the replay is in-sample for the candidate, and says so
    assert second.promotion["replay"]["candidate_in_sample_share"] == 1.0
    assert second.to_dict()["promotion"]["version"] == "v2"
    assert ModelRegistry(tmp_path / "registry").aliases().champion == "v2"
    shown, text = registry_show(tmp_path / "registry", "v2")
    assert (shown["aliases"], shown["promotion"]) == (["champion"], second.promotion)
    assert text.splitlines()[0].endswith("/registry/v2 (champion)")
    assert text.splitlines()[2] == f"promoted: {second.promotion['reason']}"
    assert registry_show(tmp_path / "registry", "v1")[0]["aliases"] == ["previous"]


def test_a_version_published_into_a_registry_without_aliases_is_not_live_before_its_gate(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import Orchestration.orchestrator as orchestrator

    loaded = training_project(sqlite_db, tmp_path, monkeypatch)
    run_training(loaded)
    shutil.rmtree(tmp_path / "registry" / "aliases")  # a registry of an earlier release

    def gate_fails(*args, **kwargs):
        raise RuntimeError("the gate broke")

    monkeypatch.setattr(orchestrator, "decide_promotion", gate_fails)
    with pytest.raises(RuntimeError, match="the gate broke"):
        run_training(loaded)
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.resolve("latest").name == "v2"
    assert registry.resolve("champion").name == "v1"  # scoring stays on v1


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_one_read_for_both_versions_gives_each_its_own_levels_and_events(
    any_db: Db, tmp_path: Path, lineage: ModelRegistry, chunk_rows: int
) -> None:
    publish_linear_version(lineage.root_dir, ["a", "b"], min_c=0.5, t_short=5)  # look-back 4
    loaded = loaded_config(any_db, tmp_path, f"scoring.chunk_rows={chunk_rows}")
    single = loaded_config(any_db, tmp_path, "scoring.chunk_rows=1000")
    session = open_database(loaded, access="read")
    try:
        models = [model_of(lineage, "v1"), model_of(lineage, "v2")]
        both = dry_scores(loaded, session, models, T0.to_pydatetime(), None)
        alone = [dry_score(single, session, m, T0.to_pydatetime(), None) for m in models]
    finally:
        session.close()
    for pair, own in zip(both, alone, strict=True):
        assert pair.ts.tolist() == own.ts.tolist()
        assert pair.worst.tolist() == own.worst.tolist()
        assert _episodes(pair.events, 0.0, severities=("alert", "error")).equals(
            _episodes(own.events, 0.0, severities=("alert", "error"))
        )
    assert [len(_episodes(s.events, 0.0)) for s in both] == [3, 6]


def test_the_in_sample_share_of_a_replay() -> None:
    from Orchestration.promotion import _in_sample_share

    start, end = T0, T0 + pd.Timedelta(hours=4)
    assert _in_sample_share(None, start, end) == 0.0
    assert _in_sample_share(T0 - pd.Timedelta(hours=1), start, end) == 0.0
    assert _in_sample_share(T0 + pd.Timedelta(hours=1), start, end) == 0.25
    assert _in_sample_share((T0 + pd.Timedelta(hours=3)).timestamp(), start, end) == 0.75
    assert _in_sample_share(end + pd.Timedelta(days=1), start, end) == 1.0
