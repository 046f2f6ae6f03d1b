"""The registry and the run's destinations through the orchestrator and the real entry points.

- what ``meta.yaml`` records (library versions, code revision) and which lock wait a run uses;
- a version that fails verification is refused before scoring (status ``registry-error``);
- an unusable registry root, ``plots.dir`` or ``--output`` is refused before any work, with the
  path and the fix, exit 8 and no traceback;
- a score run whose database write fails leaves no CSV.
"""

from __future__ import annotations

import os
import platform
import re
import stat
import subprocess
import uuid
from pathlib import Path

import numpy
import pandas as pd
import pytest
import sklearn
import sqlalchemy as sa
import yaml
from clitools import make_project, run_cli
from conftest import PROJECT_ROOT, Db
from filelock import FileLock
from fstools import full_disk, immutable
from scoring_helpers import T0
from scoring_helpers import publish_linear_version as publish_flat_version

from Database import build_demo_database, write_chunks
from ModelRegistry import ModelRegistry
from Orchestration import ExitCode, Status, TrainingRun, load_config, run_training, status_for
from Orchestration.cli import build_parser
from Orchestration.destinations import DestinationError, check_output_file

QUIET = ("--set", "plots.enabled=false")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small robot database (SQLite, named in DB_URL like a user's own database)."""
    path = build_demo_database(tmp_path_factory.mktemp("db") / "robots.sqlite", rows=1500)
    return f"sqlite:///{path}"


def _git_head() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def test_every_exit_code_is_documented_in_help_and_readme() -> None:
    help_text = build_parser().format_help()
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert re.search(rf"^  {code.value}  \S", help_text, re.MULTILINE), code
        assert re.search(rf"^\| {code.value} \| ", readme, re.MULTILINE), code
    assert Status("registry-error", "x").exit_code == ExitCode.REGISTRY_ERROR == 8
    assert "8  registry-error  a model version fails verification" in help_text
    assert "| 8 | `registry-error` | a model version fails verification" in readme


# ---------------------------------------------------------------------- meta.yaml and the lock


def test_meta_records_the_real_library_versions_and_code_revision(
    tmp_path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL", demo_url)
    result = run_training(load_config(make_project(tmp_path), ["plots.enabled=false"]))

    meta = ModelRegistry(tmp_path / "registry").load(result.version).meta
    assert {
        name: meta["libraries"][name]
        for name in ("python", "numpy", "pandas", "scikit-learn", "SQLAlchemy", "PyYAML")
    } == {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "SQLAlchemy": sa.__version__,
        "PyYAML": yaml.__version__,
    }
    assert meta["code_revision"] == _git_head()
    if (PROJECT_ROOT / ".git").exists():  # a checkout: the revision must be there
        assert len(meta["code_revision"]) == 40


def test_a_run_waits_for_the_registry_lock_as_long_as_configured(
    tmp_path: Path, demo_url: str
) -> None:
    config = make_project(tmp_path)
    root = tmp_path / "registry"
    root.mkdir()
    with FileLock(root / ".lock").acquire(timeout=5):  # another run committing, as it were
        run = run_cli(
            "main.py",
            "--json",
            *QUIET,
            "--set",
            "registry.lock_timeout_s=0.5",
            config=config,
            db_url=demo_url,
        )
    assert run.code == 8, run.stderr
    assert run.json()["status"]["code"] == "registry-error"
    assert "could not take the registry lock" in run.json()["status"]["detail"]
    assert "within 0.5 s" in run.json()["status"]["detail"]
    assert "Traceback" not in run.stderr
    assert ModelRegistry(root).list_versions() == []


# ---------------------------------------------------------------------- destinations


def _file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a file, not a folder")


DESTINATIONS = {
    "registry root is a file": (
        "registry",
        [],
        r"^registry\.root_dir .*/registry is a file, not a folder; move it away, or set "
        r"registry\.root_dir to a folder\.$",
    ),
    "registry root below a file": (
        "blocker",
        ["registry.root_dir=blocker/registry"],
        r"^.*/blocker, a parent of registry\.root_dir .*/blocker/registry, is a file, not a "
        r"folder; move it away, or set registry\.root_dir to a folder\.$",
    ),
    "plots.dir is a file": (
        "plots",
        [],
        r"^plots\.dir .*/plots is a file, not a folder; move it away, or set plots\.dir to a "
        r"folder\.$",
    ),
    "plots.dir below a file": (
        "out",
        ["plots.dir=out/plots"],
        r"out, a parent of plots\.dir .*out/plots, is a file",
    ),
}


@pytest.mark.parametrize("case", list(DESTINATIONS))
def test_an_unusable_destination_is_refused_before_any_step(
    tmp_path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    blocker, overrides, message = DESTINATIONS[case]
    monkeypatch.setenv("DB_URL", demo_url)
    _file(tmp_path / blocker)
    loaded = load_config(make_project(tmp_path), overrides)

    with pytest.raises(DestinationError, match=message) as caught:
        TrainingRun(loaded)  # the constructor refuses: no step has run
    status = status_for(caught.value)
    assert (status.code, int(status.exit_code)) == ("registry-error", 8)
    assert (tmp_path / blocker).read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.yaml", blocker])


def test_an_immutable_registry_root_is_refused_before_any_step(
    tmp_path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL", demo_url)
    root = tmp_path / "registry"
    root.mkdir()
    loaded = load_config(make_project(tmp_path))
    with (
        immutable(root),
        pytest.raises(
            DestinationError, match=r"^registry\.root_dir .* cannot be written"
        ) as caught,
    ):
        TrainingRun(loaded)
    assert str(caught.value) == (
        f"registry.root_dir {root} cannot be written: Operation not permitted in {root}. Make "
        f"the folder writable or free space on its disk, or set registry.root_dir to a "
        f"writable folder."
    )
    assert list(root.iterdir()) == []


def test_a_registry_on_a_full_disk_is_refused_by_the_entry_point(
    tmp_path: Path, demo_url: str
) -> None:
    config = make_project(tmp_path)
    with full_disk(tmp_path) as disk:
        run = run_cli(
            "main.py",
            "--json",
            *QUIET,
            "--set",
            f"registry.root_dir={disk}/registry",
            config=config,
            db_url=demo_url,
        )
        assert not (disk / "registry").exists()
    assert run.code == 8, run.stderr
    assert run.json()["status"] == {
        "code": "registry-error",
        "detail": f"registry.root_dir {disk}/registry cannot be written: No space left on "
        f"device in {disk}. Make the folder writable or free space on its disk, or set "
        f"registry.root_dir to a writable folder.",
    }
    assert "step extract" not in run.stderr  # refused before the window was read
    assert "Traceback" not in run.stderr


def test_a_registry_root_that_is_a_file_fails_the_entry_point_with_exit_8(
    tmp_path: Path, demo_url: str
) -> None:
    config = make_project(tmp_path)
    _file(tmp_path / "registry")
    run = run_cli("main.py", *QUIET, config=config, db_url=demo_url)
    assert run.code == 8
    assert f"registry.root_dir {tmp_path / 'registry'} is a file, not a folder" in run.stderr
    assert "step extract" not in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


# ---------------------------------------------------------------------- scoring


def _samples(db: Db, rows: int = 6) -> None:
    """Table ``s``: axes a and b at 1 s spacing from T0; a is 2 above the flat model at 1-2."""
    frame = pd.DataFrame(
        {
            "ts": [T0 + pd.Timedelta(seconds=i) for i in range(rows)],
            "a": [1.0, 3.5, 3.5] + [1.0] * (rows - 3),
            "b": [1.0] * rows,
        }
    )
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(db.engine, db.target, db.table("s"), columns, [frame])


def _score_project(tmp_path: Path, db: Db) -> Path:
    publish_flat_version(tmp_path / "registry", ["a", "b"])
    _samples(db)
    tables = (
        f"data: {{table: {db.table('s')}, axes: [a, b]}}\nevents: {{table: {db.table('ev')}}}\n"
    )
    return make_project(tmp_path, tables)


WINDOW = ("--start", T0.isoformat(), "--end", (T0 + pd.Timedelta(seconds=5)).isoformat())


def _tables(db: Db) -> list[str]:
    return sorted(sa.inspect(db.engine).get_table_names(schema=db.schema))


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("levels-dir", r"^--output /.*/levels-dir is a folder; give the path of a CSV file to "),
        ("/dev/full", r"^--output /dev/full is not a regular file; give the path of a CSV file"),
        (
            "blocker/levels.csv",
            r"^/.*/blocker, a parent of --output /.*/blocker/levels\.csv, is a file, not a folder; "
            r"move it away, or set --output to a path in a folder\.$",
        ),
    ],
)
def test_an_unusable_output_is_refused(tmp_path: Path, output: str, message: str) -> None:
    (tmp_path / "levels-dir").mkdir()
    _file(tmp_path / "blocker")
    with pytest.raises(DestinationError, match=message):
        check_output_file(tmp_path / output)
    assert list((tmp_path / "levels-dir").iterdir()) == []
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # a device is never replaced


def test_an_output_folder_is_refused_by_the_entry_point_before_scoring(
    tmp_path: Path, sqlite_db: Db
) -> None:
    config = _score_project(tmp_path, sqlite_db)
    (tmp_path / "levels-dir").mkdir()
    url = sqlite_db.target.url.render_as_string(hide_password=False)

    run = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        *WINDOW,
        "--output",
        "levels-dir",
        config=config,
        db_url=url,
    )
    assert run.code == 8, run.stderr
    assert run.json()["status"]["code"] == "registry-error"
    assert run.json()["status"]["detail"].startswith(
        f"--output {tmp_path / 'levels-dir'} is a folder; give the path of a CSV file"
    )
    assert "Traceback" not in run.stderr
    assert list((tmp_path / "levels-dir").iterdir()) == []
    assert _tables(sqlite_db) == ["s"]  # nothing scored, no events table


def test_a_score_output_on_a_full_disk_is_refused_before_scoring(
    tmp_path: Path, sqlite_db: Db
) -> None:
    config = _score_project(tmp_path, sqlite_db)
    url = sqlite_db.target.url.render_as_string(hide_password=False)
    with full_disk(tmp_path) as disk:
        run = run_cli(
            "orchestrate.py",
            "score",
            *WINDOW,
            "--output",
            str(disk / "levels.csv"),
            config=config,
            db_url=url,
        )
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    assert run.code == 8
    assert f"--output {disk}/levels.csv cannot be written: No space left on device" in run.stderr
    assert _tables(sqlite_db) == ["s"]


def test_a_tampered_version_is_not_scored(tmp_path: Path, sqlite_db: Db) -> None:
    """Moving data.end in meta.yaml used to move the first score run's start and skip data."""
    config = _score_project(tmp_path, sqlite_db)
    meta = tmp_path / "registry" / "v1" / "meta.yaml"
    meta.write_text(meta.read_text().replace("2026-01-04T23:59:59", "2026-01-05T00:00:03"))
    url = sqlite_db.target.url.render_as_string(hide_password=False)

    for command in (("score", "--json", "--output", "levels.csv"), ("registry", "show", "--json")):
        run = run_cli("orchestrate.py", *command, config=config, db_url=url)
        assert run.code == 8, run.stderr
        assert run.json()["status"]["code"] == "registry-error"
        detail = run.json()["status"]["detail"]
        assert "model version v1 at" in detail
        assert "failed verification against its manifest (modified: meta.yaml)" in detail
        assert "re-train with `python main.py`" in detail
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "levels.csv").exists()
    assert _tables(sqlite_db) == ["s"]


@pytest.mark.postgres
def test_a_score_run_whose_event_write_fails_leaves_no_csv(tmp_path: Path, pg_db: Db) -> None:
    """A role that may read the samples but not create or write the events tables."""
    config = _score_project(tmp_path, pg_db)
    role = f"mlbox_ro_{uuid.uuid4().hex[:10]}"
    with pg_db.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{pg_db.schema}" TO "{role}"'))
        conn.execute(sa.text(f'GRANT SELECT ON "{pg_db.schema}"."s" TO "{role}"'))
    read_only = pg_db.target.url.set(username=role, password=None)
    try:
        run = run_cli(
            "orchestrate.py",
            "score",
            "--json",
            *WINDOW,
            "--output",
            "out/levels.csv",
            config=config,
            db_url=read_only.render_as_string(hide_password=False),
        )
    finally:
        with pg_db.engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
    assert run.code == 5, run.stderr
    assert run.json()["status"]["code"] == "db-error"
    assert "permission denied" in run.json()["status"]["detail"]
    assert list((tmp_path / "out").iterdir()) == []  # neither the CSV nor its temporary file
    assert _tables(pg_db) == ["s"]
