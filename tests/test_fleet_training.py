"""Fleet training: gating by usable samples, one asset failing alone, the per-asset registry,
the fleet state table, relative windows and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from clitools import make_project, run_cli
from conftest import Db
from fleet_helpers import FAST, T0, asset_frame, cli_sets, fleet_config, write_fleet

from DataExtractionAnalysis import DataConfig, parse_relative
from Fleet import AssetOutcome, FleetStateStore, PredictorState, asset_folder, asset_from_folder
from ModelRegistry import ModelRegistry
from Orchestration.fleet import run_fleet_training


@pytest.fixture
def use_db(any_db: Db, monkeypatch: pytest.MonkeyPatch) -> Db:
    monkeypatch.setenv("DB_URL", any_db.url)
    return any_db


def _state(db: Db) -> pd.DataFrame:
    store = FleetStateStore(db.engine, db.target, db.table("fleet_state"), db.table("fleet"))
    return store.read().set_index("asset")


def test_gating_trains_assets_with_enough_usable_samples_and_counts_what_the_others_miss(
    use_db: Db, tmp_path: Path
) -> None:
    # min 40 usable: r1 has 30 running + 5 idle rows (needs 10), r2 has 39 (needs 1), r3 40.
    write_fleet(
        use_db,
        [asset_frame("r1", 35, idle=5), asset_frame("r2", 39, seed=1), asset_frame("r3", 40)],
    )
    loaded = fleet_config(use_db, tmp_path, "fleet.min_samples=40")

    report = run_fleet_training(loaded)

    by_asset = {o.asset: o for o in report.outcomes}
    assert [o.asset for o in report.outcomes] == ["r1", "r2", "r3"]
    assert (by_asset["r1"].status, by_asset["r1"].samples, by_asset["r1"].missing) == (
        "needs-data",
        30,
        10,
    )
    assert by_asset["r1"].reason == "30 usable samples in the training window, needs 10 more"
    assert (by_asset["r2"].status, by_asset["r2"].missing) == ("needs-data", 1)
    assert (by_asset["r3"].status, by_asset["r3"].version, by_asset["r3"].samples) == (
        "trained",
        "v1",
        40,
    )
    assert report.counts == {"trained": 1, "needs-data": 2, "failed": 0}
    assert report.status.code == "ok"
    assert report.status.detail.endswith("1 trained, 2 need more data, 0 failed")
    # Only the trained asset has a registry folder; the state table has every asset.
    root = tmp_path / "registry"
    assert sorted(p.name for p in root.iterdir()) == ["r3"]
    assert ModelRegistry(root / "r3").load("latest").meta["asset"] == "r3"
    state = _state(use_db)
    assert state.loc["r1", ["status", "missing", "samples"]].tolist() == ["needs-data", 10, 30]
    assert bool(state.loc["r3", "trained"]) and state.loc["r3", "version"] == "v1"
    assert pd.isna(state.loc["r1", "version"])


def test_an_asset_that_misses_data_later_keeps_its_last_good_version(
    use_db: Db, tmp_path: Path
) -> None:
    write_fleet(use_db, [asset_frame("r1", 50), asset_frame("r2", 50, seed=2)])
    run_fleet_training(fleet_config(use_db, tmp_path, "fleet.min_samples=40"))

    report = run_fleet_training(fleet_config(use_db, tmp_path, "fleet.min_samples=60"))

    assert [(o.asset, o.status, o.missing, o.version) for o in report.outcomes] == [
        ("r1", "needs-data", 10, "v1"),
        ("r2", "needs-data", 10, "v1"),
    ]
    state = _state(use_db)
    assert state.loc["r1", ["status", "trained", "version"]].tolist() == ["needs-data", False, "v1"]
    assert state.loc["r1", "families"] == '{"a": "linear", "b": "linear"}'
    assert ModelRegistry(tmp_path / "registry" / "r1").resolve("latest").name == "v1"


def test_an_asset_with_bad_data_fails_alone(use_db: Db, tmp_path: Path) -> None:
    bad = asset_frame("r2", 50, seed=3)
    bad.loc[10, "ts"] = bad.loc[9, "ts"]  # a repeated timestamp in r2 only
    write_fleet(use_db, [asset_frame("r1", 50), bad, asset_frame("r3", 50, seed=4)])

    report = run_fleet_training(fleet_config(use_db, tmp_path, "fleet.min_samples=40"))

    statuses = {o.asset: (o.status, o.code) for o in report.outcomes}
    assert statuses == {
        "r1": ("trained", None),
        "r2": ("failed", "invalid-input"),
        "r3": ("trained", None),
    }
    failed = next(o for o in report.outcomes if o.asset == "r2")
    assert "repeat the timestamp" in str(failed.reason)
    assert (report.status.code, int(report.status.exit_code)) == ("fleet-partial", 9)
    assert sorted(p.name for p in (tmp_path / "registry").iterdir()) == ["r1", "r3"]
    assert _state(use_db).loc["r2", "status"] == "failed"


def test_an_asset_whose_version_cannot_be_published_fails_alone(use_db: Db, tmp_path: Path) -> None:
    # Versions are published on a thread while the next asset computes: a failure there is
    # still that asset's own, and the others (before and after it) are published.
    write_fleet(use_db, [asset_frame(f"r{k}", 50, seed=k) for k in (1, 2, 3)])
    blocked = tmp_path / "registry" / "r2" / ".staging"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the staging folder goes")

    report = run_fleet_training(fleet_config(use_db, tmp_path, "fleet.min_samples=40"))

    statuses = {o.asset: (o.status, o.code, o.version) for o in report.outcomes}
    assert statuses == {
        "r1": ("trained", None, "v1"),
        "r2": ("failed", "registry-error", None),
        "r3": ("trained", None, "v1"),
    }
    assert [o.asset for o in report.outcomes] == ["r1", "r2", "r3"]
    assert not (tmp_path / "registry" / "r2" / "v1").exists()
    assert _state(use_db).loc["r2", "status"] == "failed"


def test_state_rows_are_written_idempotently(use_db: Db, tmp_path: Path) -> None:
    write_fleet(use_db, [asset_frame("r1", 50), asset_frame("r2", 20)])
    loaded = fleet_config(use_db, tmp_path, "fleet.min_samples=40")
    run_fleet_training(loaded)
    first = _state(use_db)

    run_fleet_training(loaded)

    again = _state(use_db)
    assert len(again) == 2
    assert again.loc["r1", "version"] == "v2" and first.loc["r1", "version"] == "v1"
    # report.html of v2 compares its thresholds with v1's (the fleet hands them over).
    page = ModelRegistry(tmp_path / "registry" / "r1").load("v2").read_bytes("report.html")
    assert b"compared with v1, the latest version before it" in page
    columns = ["status", "samples", "missing", "reason"]
    assert again.loc["r2", columns].tolist() == first.loc["r2", columns].tolist()


def test_configured_assets_are_the_only_ones_trained_and_unknown_ones_need_data(
    use_db: Db, tmp_path: Path
) -> None:
    write_fleet(use_db, [asset_frame(7, 50), asset_frame(12, 50, seed=5), asset_frame(3, 50)])
    loaded = fleet_config(use_db, tmp_path, "fleet.min_samples=40", "data.assets=[12, 99]")

    report = run_fleet_training(loaded)

    assert [(o.asset, o.status, o.missing) for o in report.outcomes] == [
        ("12", "trained", None),
        ("99", "needs-data", 40),
    ]


def test_relative_windows_count_from_each_assets_newest_sample(use_db: Db, tmp_path: Path) -> None:
    # r1 ends at T0+99 s, r2 (starting 1000 s later) at T0+1099 s; the last 40 s of each but
    # the newest 10 s: [newest-40 s, newest-10 s) holds 30 samples of each.
    write_fleet(
        use_db,
        [
            asset_frame("r1", 100),
            asset_frame("r2", 100, start=T0 + pd.Timedelta(seconds=1000)),
        ],
    )
    loaded = fleet_config(
        use_db, tmp_path, "fleet.min_samples=20", "data.train_start=-40s", "data.train_end=-10s"
    )

    run_fleet_training(loaded)

    for asset, newest in (("r1", 99), ("r2", 1099)):
        data = ModelRegistry(tmp_path / "registry" / asset).load("latest").meta["data"]
        assert data["rows"] == 30
        assert pd.Timestamp(data["start"]) == T0 + pd.Timedelta(seconds=newest - 40)
        assert pd.Timestamp(data["end"]) == T0 + pd.Timedelta(seconds=newest - 11)
        assert data["requested_start"] == "-40s"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("-30d", -30 * 86400), ("-1.5h", -5400), ("-90m", -5400), ("-2w", -1209600), ("-45s", -45)],
)
def test_relative_bounds_parse(text: str, seconds: float) -> None:
    parsed = parse_relative(text)
    assert parsed is not None and parsed.total_seconds() == seconds
    assert DataConfig(train_start=text).train_start == parsed


@pytest.mark.parametrize(
    ("asset", "folder"),
    [
        ("robot_a", "robot_a"),
        ("..", "%2E."),
        (".staging", "%2Estaging"),
        ("a/b", "a%2Fb"),
        ("Ä-12", "%C3%84-12"),
        ("100%", "100%25"),
        (42, "42"),
    ],
)
def test_asset_ids_become_safe_reversible_folder_names(asset: object, folder: str) -> None:
    assert asset_folder(asset) == folder
    assert asset_from_folder(folder) == str(asset)


def test_train_cli_reports_the_fleet_and_its_exit_code(sqlite_db: Db, tmp_path: Path) -> None:
    bad = asset_frame("r2", 50, seed=3)
    bad.loc[10, "ts"] = bad.loc[9, "ts"]
    write_fleet(sqlite_db, [asset_frame("r1", 50), bad, asset_frame("r3", 10)])
    config = make_project(tmp_path)
    options = cli_sets("fleet.min_samples=40", *FAST)

    trained = run_cli("main.py", "--json", *options, config=config, db_url=sqlite_db.url)
    fleet = run_cli("orchestrate.py", "fleet", *options, config=config, db_url=sqlite_db.url)
    listed = run_cli(
        "orchestrate.py", "registry", "list", *options, config=config, db_url=sqlite_db.url
    )
    shown = run_cli(
        "orchestrate.py",
        "registry",
        "show",
        "--asset",
        "r1",
        "--json",
        *options,
        config=config,
        db_url=sqlite_db.url,
    )
    unnamed = run_cli(
        "orchestrate.py", "registry", "show", *options, config=config, db_url=sqlite_db.url
    )

    assert trained.code == 9, trained.stderr
    payload = trained.json()
    assert payload["status"]["code"] == "fleet-partial"
    assert payload["counts"] == {"trained": 1, "needs-data": 1, "failed": 1}
    assert [a["status"] for a in payload["assets"]] == ["trained", "failed", "needs-data"]
    assert payload["assets"][2]["missing"] == 30
    assert fleet.code == 0, fleet.stderr
    assert "needs 30 more" in fleet.stdout
    assert listed.code == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[2:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("r1", "v1", "trained"),
        ("r2", "-", "failed"),
        ("r3", "-", "needs-data"),
    ]
    assert shown.code == 0, shown.stderr
    assert shown.json()["version"] == "v1"
    assert unnamed.code == 2
    assert "name one with --asset ID" in unnamed.stderr


def _families_record(folder: Path, asset: str) -> dict:
    return ModelRegistry(folder / "registry" / asset).load("latest").read_json("selection.json")


def test_shared_selection_chooses_once_and_every_asset_fits_its_own_thresholds(
    use_db: Db, tmp_path: Path
) -> None:
    write_fleet(use_db, [asset_frame(f"r{i}", 300, seed=i) for i in range(1, 5)])
    auto = ("model.type=auto", "model.candidates=[constant, linear]", "fleet.min_samples=40")

    run_fleet_training(fleet_config(use_db, tmp_path / "shared", *auto, "fleet.selection_assets=2"))
    run_fleet_training(fleet_config(use_db, tmp_path / "own", *auto, "fleet.selection=per-asset"))

    shared = {a: _families_record(tmp_path / "shared", a) for a in ("r1", "r2", "r3", "r4")}
    # The sample: the first and the last asset, evenly spread.
    assert shared["r2"]["criterion"].startswith(
        "shared by the fleet: the choice of most of 2 assets (r1, r4)"
    )
    assert len({json.dumps(record["chosen"], sort_keys=True) for record in shared.values()}) == 1
    thresholds = {
        a: ModelRegistry(tmp_path / "shared" / "registry" / a).load().read_json("thresholds.json")
        for a in ("r1", "r2")
    }
    assert thresholds["r1"]["a"]["MinC"] != thresholds["r2"]["a"]["MinC"]
    own = _families_record(tmp_path / "own", "r2")
    assert not own["criterion"].startswith("shared") and own["table"]


def test_plots_are_drawn_for_assets_whose_thresholds_moved_and_those_asked_for(
    use_db: Db, tmp_path: Path
) -> None:
    write_fleet(use_db, [asset_frame(f"r{i}", 200, seed=i) for i in range(1, 4)])
    plotted = ("plots.enabled=true", "fleet.min_samples=40")
    first = run_fleet_training(fleet_config(use_db, tmp_path, *plotted))
    assert [o.plots for o in first.outcomes] == [0, 0, 0]  # no previous version: no change
    # r2's noise grows fivefold: its thresholds move far; r1 and r3 go on as before.
    louder = asset_frame("r2", 400, seed=9, start=T0 + pd.Timedelta(seconds=200))
    louder[["a", "b"]] = 5.0 + (louder[["a", "b"]] - louder[["a", "b"]].mean()) * 5
    quiet = [
        asset_frame(a, 400, seed=i, start=T0 + pd.Timedelta(seconds=200))
        for i, a in ((11, "r1"), (13, "r3"))
    ]
    write_fleet(use_db, [louder, *quiet])

    second = run_fleet_training(fleet_config(use_db, tmp_path, *plotted), plots=["r3"])

    by_asset = {o.asset: o for o in second.outcomes}
    assert by_asset["r1"].attention == [] and by_asset["r1"].plots == 0
    assert by_asset["r2"].attention and by_asset["r2"].attention[0].startswith("a MinC ")
    assert by_asset["r2"].plots == 4 and by_asset["r3"].plots == 4
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["r2", "r3"]
    version = ModelRegistry(tmp_path / "registry" / "r2").load("v2")
    assert sorted(n for n in version.artifacts if n.startswith("plots/")) == [
        "plots/a_fit.png",
        "plots/a_residual.png",
        "plots/b_fit.png",
        "plots/b_residual.png",
    ]
    state = _state(use_db)
    assert state.loc["r2", "attention"].startswith("a MinC ")


@pytest.mark.slow
def test_the_demo_fleet_trains_and_scores_out_of_the_box(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    fleet = ["--set", "data.table=robot_fleet", "--set", "data.asset_col=robot_id"]
    fleet += ["--set", "data.train_end=2026-01-10T14:00:00Z"]  # as the shipped config.yaml

    trained = run_cli("main.py", "--json", *fleet, config=config)
    scored = run_cli("orchestrate.py", "score", "--json", *fleet, config=config)

    assert trained.code == 0, trained.stderr
    statuses = {a["asset"]: (a["status"], a["missing"]) for a in trained.json()["assets"]}
    assert statuses.pop("robot_05")[0] == "needs-data"
    assert statuses == {f"robot_0{i}": ("trained", None) for i in (1, 2, 3, 4, 6)}
    assert scored.code == 0, scored.stderr
    events = {a["asset"]: a["events"] for a in scored.json()["assets"]}
    assert events["robot_04"]["alert"] >= 1  # the labelled fault
    assert all(events[f"robot_0{i}"] == {"alert": 0, "error": 0} for i in (1, 2, 3, 6))


def test_profile_reads_one_asset_of_a_fleet(sqlite_db: Db, tmp_path: Path) -> None:
    write_fleet(sqlite_db, [asset_frame("r1", 50), asset_frame("r2", 30, seed=1)])
    config = make_project(tmp_path)

    one = run_cli(
        "orchestrate.py",
        "profile",
        "--asset",
        "r2",
        "--json",
        *cli_sets("data.train_end=null"),
        config=config,
        db_url=sqlite_db.url,
    )
    unnamed = run_cli("orchestrate.py", "profile", *cli_sets(), config=config, db_url=sqlite_db.url)

    assert one.code == 0, one.stderr
    assert one.json()["profile"]["rows"] == 30
    assert unnamed.code == 2 and "name the asset to profile with --asset ID" in unnamed.stderr


def test_the_state_of_a_fleet_that_grows_is_written_with_the_new_assets(use_db: Db) -> None:
    # The stored rows' predictor columns are carried over; a new asset has none. One insert of
    # rows with and without them failed ("a value is required for bind parameter
    # 'predictor_status'"): a fleet that gained an asset lost its whole state write.
    store = FleetStateStore(
        use_db.engine, use_db.target, use_db.table("fleet_state"), use_db.table("fleet")
    )
    store.write([AssetOutcome(asset="r1", status="trained", version="v1", samples=50)], "run-1")
    store.write_predictors(
        [PredictorState(asset="r1", status="trained", version="p1", auc=0.875)], "run-p"
    )

    store.write(
        [
            AssetOutcome(asset="r1", status="trained", version="v2", samples=60),
            AssetOutcome(asset="r2", status="needs-data", samples=10, missing=30),
        ],
        "run-2",
    )

    state = _state(use_db)
    assert sorted(state.index) == ["r1", "r2"]
    assert state.loc["r1", ["version", "samples", "run_id"]].tolist() == ["v2", 60, "run-2"]
    assert state.loc["r1", ["predictor_status", "predictor_version"]].tolist() == [
        "trained",
        "p1",
    ]
    assert state.loc["r1", "predictor_auc"] == 0.875
    assert state.loc["r2", ["status", "missing"]].tolist() == ["needs-data", 30]
    assert pd.isna(state.loc["r2", "predictor_status"])
