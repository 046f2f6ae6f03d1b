"""Which database a run uses: the demo only when the config asks, a missing URL or SQLite file
is a db-error that creates nothing, and extraction opens SQLite files read-only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import PROJECT_ROOT

from Database import (
    DatabaseConfig,
    DatabaseError,
    DatabaseTarget,
    connect_engine,
    demo_data,
    float_columns,
    resolve_target,
    write_chunks,
)
from Orchestration import load_config
from Orchestration.orchestrator import TrainingRun

TRAIN_END = pd.Timestamp("2026-01-10T14:00:00Z")  # data.train_end of the shipped config

PRODUCTION_CONFIG = "registry: {root_dir: registry}\nplots: {dir: plots}\n"


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_the_demo_is_off_unless_the_config_asks_for_it(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"environment variable DB_URL is not set"):
        resolve_target(DatabaseConfig(), tmp_path, {})
    shipped = load_config(PROJECT_ROOT / "config.yaml").config.database
    target = resolve_target(shipped, PROJECT_ROOT, {})
    assert target.embedded
    assert target.url.database == str(PROJECT_ROOT / "out" / "demo.sqlite")
    # A URL, when set, wins over the demo.
    chosen = resolve_target(shipped, PROJECT_ROOT, {"DB_URL": f"sqlite:///{tmp_path}/x.sqlite"})
    assert not chosen.embedded


@pytest.mark.parametrize(
    ("dotenv", "environ", "says"),
    [
        (None, {}, r"DB_URL is not set \(looked in the environment and in {env}, which does not "),
        ("OTHER=1\n", {}, r"DB_URL is not set \(looked in the environment and in {env}\); put"),
        (None, {"DB_URL": "  "}, r"DB_URL is empty \(looked in the environment and in {env}\)"),
    ],
)
def test_a_missing_url_names_the_variable_where_it_looked_and_the_fix(
    tmp_path: Path, dotenv: str | None, environ: dict[str, str], says: str
) -> None:
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv, encoding="utf-8")
    expected = says.format(env=str(env_file).replace(".", r"\."))
    with pytest.raises(DatabaseError, match=expected) as caught:
        resolve_target(DatabaseConfig(), tmp_path, environ)
    assert f"put DB_URL=postgresql://user:password@host:5432/dbname in {env_file}" in str(
        caught.value
    )
    assert "database.embedded_demo: true" in str(caught.value)


@pytest.mark.parametrize(
    "command",
    [
        ["main.py"],
        ["orchestrate.py", "profile"],
        ["orchestrate.py", "ingest", "CSV", "--table", "t"],
    ],
)
def test_a_production_config_without_the_url_is_db_error_and_writes_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    project, elsewhere, data = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "data"
    config = make_project(project)
    config.write_text(PRODUCTION_CONFIG, encoding="utf-8")  # no database section: demo off
    elsewhere.mkdir()
    data.mkdir()
    (data / "export.csv").write_text("ts,a\n2026-01-05T00:00:00Z,1\n", encoding="utf-8")
    args = [str(data / "export.csv") if arg == "CSV" else arg for arg in command[1:]]

    run = run_cli(command[0], *args, "--json", config=config, cwd=elsewhere)

    assert run.code == 5, run.stderr
    status = run.json()["status"]
    assert status["code"] == "db-error"
    assert status["detail"].startswith(
        "no database configured: environment variable DB_URL is not set (looked in the "
        f"environment and in {project / '.env'}, which does not exist)"
    )
    assert "embedded demo" not in run.stderr
    assert _files(project) == ["config.yaml"]
    assert _files(elsewhere) == []
    assert _files(data) == ["export.csv"]


def test_without_a_config_file_the_message_says_where_config_yaml_was_looked_for(
    tmp_path: Path,
) -> None:
    run = run_cli("main.py", "--json", config=None, cwd=tmp_path)
    assert run.code == 5, run.stderr
    detail = run.json()["status"]["detail"]
    assert "environment variable DB_URL is not set" in detail
    assert f"config.yaml is looked for in the working directory ({tmp_path})" in detail
    assert "pass --config /path/to/config.yaml" in detail
    assert _files(tmp_path) == []


def test_the_shipped_config_runs_on_the_demo_from_another_folder(tmp_path: Path) -> None:
    clone, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    clone.mkdir()
    elsewhere.mkdir()
    shutil.copy(PROJECT_ROOT / "config.yaml", clone / "config.yaml")

    run = run_cli(
        "orchestrate.py", "profile", "--json", config=clone / "config.yaml", cwd=elsewhere
    )

    assert run.code == 0, run.stderr
    # The shipped config trains on the demo's first ~80 %: the window up to data.train_end.
    samples = demo_data().samples
    assert run.json()["profile"]["rows"] == int((samples["ts"] < TRAIN_END).sum()) == 255_104
    assert f"using the embedded demo database {clone / 'out' / 'demo.sqlite'}" in run.stderr
    assert "database.embedded_demo is on" in run.stderr
    assert _files(clone) == ["config.yaml", "out", "out/demo.sqlite"]
    assert _files(elsewhere) == []


def test_a_mistyped_sqlite_path_is_reported_and_creates_nothing(tmp_path: Path) -> None:
    config = make_project(tmp_path / "project")
    typo = tmp_path / "dat" / "plant.sqlite"
    run = run_cli("orchestrate.py", "profile", "--json", config=config, db_url=f"sqlite:///{typo}")
    assert run.code == 5, run.stderr
    detail = run.json()["status"]["detail"]
    assert detail.startswith(f"SQLite database file {typo} does not exist; nothing was created")
    assert "four slashes" in detail
    assert not (tmp_path / "dat").exists()
    assert _files(tmp_path / "project") == ["config.yaml"]


def test_training_reads_an_existing_sqlite_file_read_only(tmp_path: Path) -> None:
    path = tmp_path / "plant.sqlite"
    target = DatabaseTarget(url=sa.URL.create("sqlite", database=str(path)), embedded=False)
    samples = pd.DataFrame(
        {"ts": pd.date_range("2026-01-05", periods=4, freq="2s", tz="UTC"), "a": [1.0, 2, 3, 4]}
    )
    engine = connect_engine(target, DatabaseConfig(), access="create")
    columns = {"ts": sa.DateTime(timezone=True), **float_columns(["a"])}
    write_chunks(engine, target, "s", columns, [samples])
    engine.dispose()
    config = make_project(tmp_path / "project", "data: {table: s, axes: [a]}\n")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DB_URL", f"sqlite:///{path}")
        run = TrainingRun(load_config(config, ["plots.enabled=false"]))
    try:
        state = run.run_step("extract")
        assert state.extraction is not None
        assert state.extraction.frame["a"].tolist() == [1.0, 2.0, 3.0, 4.0]
        with (
            pytest.raises(sa.exc.OperationalError, match="attempt to write a readonly database"),
            state.session.engine.begin() as conn,
        ):
            conn.execute(sa.text("DELETE FROM s"))
    finally:
        run.close()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM s")).scalar() == 4
