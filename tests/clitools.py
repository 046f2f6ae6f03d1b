"""Running the real entry points in a subprocess against a project folder under tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import PROJECT_ROOT

CONFIG_TEMPLATE = """\
database: {{embedded_demo: true, embedded_path: demo.sqlite}}
registry: {{root_dir: registry}}
plots: {{dir: plots, max_points: 2000}}
"""


@dataclass(frozen=True)
class Run:
    """A finished command: exit code, stdout, stderr."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """stdout parsed as the single JSON object of --json."""
        return json.loads(self.stdout)


def make_project(folder: Path, extra_config: str = "") -> Path:
    """A config.yaml in ``folder`` whose relative paths all stay inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(CONFIG_TEMPLATE.format() + extra_config, encoding="utf-8")
    return path


def run_cli(
    script: str,
    *args: str,
    config: Path | None,
    db_url: str | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> Run:
    """Run ``python <script> --config <config> args...`` with DB_URL set or unset.

    ``config=None`` passes no ``--config``; ``cwd`` defaults to the config's folder.
    """
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
    if db_url is not None:
        env["DB_URL"] = db_url
    options = [] if config is None else ["--config", str(config)]
    command = [sys.executable, str(PROJECT_ROOT / script), *options, *args]
    folder = cwd if cwd is not None else config.parent if config is not None else None
    if folder is None:
        raise ValueError("run_cli needs cwd when config is None")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)
