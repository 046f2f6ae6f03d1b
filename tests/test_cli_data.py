"""The data-side commands end to end: demo-db, profile, ingest; statuses and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from clitools import make_project, run_cli
from conftest import Db

from Database import DEMO_AXES, demo_data, float_columns, write_chunks
from DataExtractionAnalysis import DataConfig, extract_window, profile


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = make_project(tmp_path_factory.mktemp("demo"))
    built = run_cli(
        "orchestrate.py", "demo-db", "--rows", "3000", "--schema", "long", config=config
    )
    assert built.code == 0, built.stderr
    return config


def test_profile_on_the_embedded_demo_database(demo_project: Path) -> None:
    run = run_cli("orchestrate.py", "profile", "--json", config=demo_project)
    assert run.code == 0, run.stderr
    payload = run.json()
    assert payload["status"]["code"] == "ok"
    assert payload["profile"]["rows"] == 3000
    assert payload["profile"]["dt_seconds"] == 1.891
    assert list(payload["profile"]["axes"]) == list(DEMO_AXES)
    assert "embedded demo database" in run.stderr and "DB_URL" in run.stderr


def test_profile_table_output_and_long_layout_agree(demo_project: Path) -> None:
    wide = run_cli("orchestrate.py", "profile", "--json", config=demo_project).json()
    long = run_cli(
        "orchestrate.py",
        "profile",
        "--json",
        "--set",
        "data.table=robot_samples_long",
        "--set",
        "data.axes=[1,2,3,4,5,6,7,8]",
        config=demo_project,
    ).json()
    assert long["profile"] == wide["profile"]
    text = run_cli("orchestrate.py", "profile", config=demo_project)
    assert "dt_seconds 1.891 (median interval)" in text.stdout
    assert [
        line.split()[0]
        for line in text.stdout.splitlines()
        if line[:4] == "axis" and line[4].isdigit()
    ] == list(DEMO_AXES)


@pytest.mark.parametrize(
    ("args", "code", "status", "fragment"),
    [
        (
            ["--set", "thresholds.minc_percentile=120"],
            2,
            "invalid-config",
            "thresholds.minc_percentile: must be between 0 and 100, got 120",
        ),
        (
            ["--set", "data.axes=[axis1, axis9]"],
            3,
            "invalid-input",
            "column 'axis9' (data.axes) not found",
        ),
        (["--set", "data.train_start=2030-01-01"], 3, "invalid-input", "no rows in table"),
    ],
)
def test_failures_have_their_status_and_exit_code(
    demo_project: Path, args: list[str], code: int, status: str, fragment: str
) -> None:
    run = run_cli("orchestrate.py", "profile", "--json", *args, config=demo_project)
    assert run.code == code
    assert run.json()["status"]["code"] == status
    assert fragment in run.json()["status"]["detail"]
    assert fragment in run.stderr


def test_unreachable_database_is_db_error_without_password(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    run = run_cli(
        "orchestrate.py",
        "profile",
        "--json",
        config=config,
        db_url="postgresql://robot:Sup3r-S3cret@127.0.0.1:1/plant",
    )
    assert run.code == 5
    assert run.json()["status"]["code"] == "db-error"
    assert "Connection refused" in run.json()["status"]["detail"]
    assert "Sup3r-S3cret" not in run.stdout + run.stderr
    assert not (tmp_path / "registry").exists()


def test_ingest_command_loads_a_csv(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    csv = tmp_path / "export.csv"
    csv.write_text(
        "time,Axis #1\n2026-01-05T00:00:00Z,1\n2026-01-05T00:00:02Z,2\n2026-01-05T00:00:04Z,4\n",
        encoding="utf-8",
    )
    run = run_cli(
        "orchestrate.py", "ingest", str(csv), "--table", "mine", "--time-col", "time", config=config
    )
    assert run.code == 0, run.stderr
    assert "loaded 3 rows into mine" in run.stdout
    prof = run_cli(
        "orchestrate.py",
        "profile",
        "--json",
        "--set",
        "data.table=mine",
        "--set",
        "data.time_col=time",
        "--set",
        "data.axes=['Axis #1']",
        config=config,
    )
    assert prof.json()["profile"]["axes"]["Axis #1"]["max"] == 4.0


@pytest.mark.postgres
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_postgres_profile_equals_sqlite_profile(pg_db: Db, demo_project: Path, layout: str) -> None:
    samples = demo_data(3000).samples
    sa_types = __import__("sqlalchemy")
    if layout == "wide":
        columns = {"ts": sa_types.DateTime(timezone=True), **float_columns(DEMO_AXES)}
        stored, axes = samples, "[axis1,axis2,axis3,axis4,axis5,axis6,axis7,axis8]"
    else:
        stored = samples.melt(id_vars="ts", var_name="axis", value_name="value").dropna()
        stored["axis_id"] = stored.pop("axis").str.removeprefix("axis").astype(int)
        stored = stored[["ts", "axis_id", "value"]]
        columns = {
            "ts": sa_types.DateTime(timezone=True),
            "axis_id": sa_types.Integer(),
            "value": sa_types.Float(53),
        }
        axes = "[1,2,3,4,5,6,7,8]"
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("robot"), columns, [stored])

    sqlite = run_cli("orchestrate.py", "profile", "--json", config=demo_project).json()
    pg = run_cli(
        "orchestrate.py",
        "profile",
        "--json",
        "--set",
        f"data.table={pg_db.table('robot')}",
        "--set",
        f"data.axes={axes}",
        config=demo_project,
        db_url=pg_db.url,
    ).json()
    assert pg["status"]["code"] == "ok"
    assert pg["profile"] == sqlite["profile"]

    frame = extract_window(
        pg_db.engine,
        pg_db.target,
        DataConfig(table=pg_db.table("robot"))
        if layout == "wide"
        else DataConfig(table=pg_db.table("robot"), axes=list(range(1, 9))),
    ).frame
    assert profile(frame, list(DEMO_AXES)).dt_seconds == 1.891


def test_ingest_long_semicolon_csv_prints_its_axis_ids_and_appends_only_new_rows(
    tmp_path: Path,
) -> None:
    config = make_project(tmp_path)
    csv = tmp_path / "long.csv"
    csv.write_text("ts;axis_id;value\n100;3;1\n100;7;2\n102;3;3\n", encoding="utf-8")
    args = ("ingest", str(csv), "--table", "lg", "--schema", "long", "--delimiter", ";")

    run = run_cli("orchestrate.py", *args, config=config)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == (
        "loaded 3 rows into lg; use it with --set data.table=lg --set 'data.axes=[3, 7]'"
    )

    again = run_cli("orchestrate.py", *args, "--if-exists", "append-new", "--json", config=config)
    assert again.code == 0, again.stderr
    assert {key: again.json()[key] for key in ("rows", "skipped", "axes")} == {
        "rows": 0,
        "skipped": 3,
        "axes": [3, 7],
    }
    assert (
        "loaded 0 rows into lg (3 rows already there, skipped)" in again.json()["status"]["detail"]
    )

    wrong = run_cli("orchestrate.py", *args[:-1], ";;", config=config)
    assert wrong.code == 2
    assert "';;' is not a delimiter: give one character" in wrong.stderr
