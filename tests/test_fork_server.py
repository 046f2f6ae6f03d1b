"""fork_server: the fleet pool's server started while the entry point loads, only for runs
that will use the pool, and the pool's workers given the run's environment either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fork_server import expected_pool_module
from Orchestration import load_config
from Orchestration.fleet import worker_environment

ROOT = Path(__file__).resolve().parents[1]
FLEET = "data:\n  table: robots\n  asset_col: robot_id\n"
PLAIN = "data:\n  table: robots\n"
TRAIN, SCORE = "Orchestration.fleet", "Orchestration.fleet_scoring"


@pytest.mark.parametrize(
    ("config", "argv", "default", "expected"),
    [
        (FLEET, ["train"], None, TRAIN),
        (FLEET, ["score"], None, SCORE),
        (
            FLEET,
            ["--set", "fleet.workers=4", "train", "--plots", "all"],
            None,
            TRAIN,
        ),
        (FLEET, [], "train", TRAIN),  # main.py
        (FLEET, ["--json"], None, TRAIN),  # orchestrate.py without a command trains
        (FLEET, ["score", "--asset", "r1"], None, None),  # one asset: no pool
        (FLEET, ["profile"], None, None),
        (FLEET, ["registry", "list"], None, None),
        (FLEET, ["--set", "data.asset_col=null", "train"], None, None),
        (FLEET, ["--set=fleet.executor=dask", "train"], None, None),
        (FLEET, ["train", "--set", "fleet.workers=1"], None, None),
        (FLEET + "fleet:\n  workers: 1\n", ["train"], None, None),
        (PLAIN, ["train"], None, None),  # no fleet
        (
            PLAIN,
            ["train", "--set", "data.asset_col=id"],
            None,
            TRAIN,
        ),
        ("data: [unclosed\n", ["train"], None, None),  # not YAML: the run says why
        ("- a list\n", ["train"], None, None),
    ],
)
def test_the_guess_reads_the_command_line_and_the_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    argv: list[str],
    default: str | None,
    expected: str | None,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the default pool: one worker per core
    (tmp_path / "config.yaml").write_text(config)
    assert expected_pool_module(argv, default_command=default, cwd=tmp_path) == expected


def test_one_core_makes_no_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text(FLEET)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert expected_pool_module(["train"], cwd=tmp_path) is None
    assert expected_pool_module(["train", "--set", "fleet.workers=2"], cwd=tmp_path) == TRAIN


def test_a_config_named_on_the_command_line_is_read(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET + "fleet:\n  workers: 2\n")
    for argv in (["--config", "fleet.yaml", "train"], ["train", "--config=fleet.yaml"]):
        assert expected_pool_module(argv, cwd=tmp_path) == "Orchestration.fleet"
    assert expected_pool_module(["--config", "missing.yaml", "train"], cwd=tmp_path) is None


SCRIPT = """
import sys

sys.path[:0] = [{root!r}, {tests!r}]
from fork_server import warm_fork_server

if __name__ == "__main__":
    if sys.argv[1] == "warm":
        print(warm_fork_server(["train", "--config", {config!r}]))
    import io

    from Fleet import FleetConfig, Progress
    from Fleet.executor import run_tasks
    from pool_tasks import preloaded

    with Progress(2, "tasks", stream=io.StringIO()) as progress:
        print(run_tasks(preloaded, None, [[1], [2]], config=FleetConfig(workers=2),
                        progress=progress, on_error=lambda batch, exc: [repr(exc)]))
"""


def test_a_warm_server_serves_the_pool_with_the_pipeline_loaded(tmp_path: Path) -> None:
    """Started by warm_fork_server, the server has imported the fleet's module before any
    pool asks for it; the pool then forks its workers from it (they have the module without
    importing it). Without it, the pool starts a server preloading only its task's module."""
    config = tmp_path / "config.yaml"
    config.write_text(FLEET + "fleet:\n  workers: 2\n")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), config=str(config)))

    def run(mode: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, str(script), mode], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("warm") == ["Orchestration.fleet", "[True,", "True]"]
    assert run("cold") == ["[False,", "False]"]


def test_pool_workers_take_over_every_variable_of_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server started before the run loaded ``.env`` does not have its variables: the
    workers take them over from the run when they start."""
    (tmp_path / "config.yaml").write_text(FLEET)
    (tmp_path / ".env").write_text("DB_URL=sqlite:///x.db\nPGSSLMODE=require\nBARE\n")
    monkeypatch.setenv("PGSSLMODE", "verify-full")  # the run's value wins, as load_dotenv does
    monkeypatch.delenv("BARE", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("DB_URL", "sqlite:///y.db")

    environment = worker_environment(load_config(tmp_path / "config.yaml"))

    assert environment == {
        "BARE": None,
        "DB_URL": "sqlite:///y.db",
        "PGPASSWORD": None,
        "PGSSLMODE": "verify-full",
    }
