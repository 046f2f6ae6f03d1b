"""Lifecycle in a fleet: a lineage per asset, the decision in the fleet table, --asset."""

from __future__ import annotations

from pathlib import Path

from clitools import make_project, run_cli
from conftest import Db
from fleet_helpers import FAST, asset_frame, cli_sets, fleet_config, write_fleet

from ModelRegistry import ModelRegistry
from Orchestration.fleet import read_fleet_state, run_fleet_training
from Orchestration.fleet_scoring import run_fleet_scoring


def test_each_asset_has_its_champion_and_the_fleet_table_says_what_was_kept_back(
    sqlite_db: Db, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    write_fleet(sqlite_db, [asset_frame("r1", 60), asset_frame("r2", 60, seed=1)])
    loaded = fleet_config(sqlite_db, tmp_path, "fleet.min_samples=40", "registry.promote=manual")

    first = run_fleet_training(loaded)
    second = run_fleet_training(loaded)

    assert [o.promotion["reason"] for o in first.outcomes] == [
        "the first version of its lineage"
    ] * 2
    kept = second.outcomes[0]
    assert (kept.version, kept.promotion["promoted"], kept.promotion["champion"]) == (
        "v2",
        False,
        "v1",
    )
    note = "not promoted, scoring keeps v1: registry.promote is manual: `registry promote v2`"
    assert kept.attention == [f"{note} makes it live"]
    state = read_fleet_state(loaded).set_index("asset")
    assert state.loc["r1", "attention"] == f"{note} makes it live"
    root = tmp_path / "registry"
    assert [ModelRegistry(root / a).aliases().champion for a in ("r1", "r2")] == ["v1", "v1"]

    config = make_project(tmp_path)
    options = cli_sets("fleet.min_samples=40", *FAST)
    promoted = run_cli(
        "orchestrate.py",
        "registry",
        "promote",
        "v2",
        "--asset",
        "r1",
        "--json",
        *options,
        config=config,
        db_url=sqlite_db.url,
    )
    assert promoted.code == 0, promoted.stderr
    assert promoted.json()["aliases"] == {"champion": "v2", "previous": "v1", "pins": []}
    listed = run_cli(
        "orchestrate.py", "registry", "list", *options, config=config, db_url=sqlite_db.url
    )
    rows = [line.split()[:3] for line in listed.stdout.splitlines()[2:]]
    assert rows == [["r1", "v2", "v2"], ["r2", "v2", "v1"]]  # asset, latest, champion

    scored = run_fleet_scoring(loaded)
    assert [(a.asset, a.version) for a in scored.assets] == [("r1", "v2"), ("r2", "v1")]
