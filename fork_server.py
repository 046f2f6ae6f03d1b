"""The fleet's fork server, started by the entry points while the pipeline loads.

A fleet run's local pool forks its workers from a server process that has imported the
pipeline once (``Fleet.executor``). Started by the pool, that import (~0.7 s of one core)
comes after the run's own (~0.9 s), and each leaves the other core idle. When the command
line and the config file say that this run will use the local pool, ``main.py`` and
``orchestrate.py`` start the server first (:func:`warm_fork_server`), so that both imports
run at once: ~0.5-0.8 s less per fleet run on 2 cores.

The guess reads only the command line and the config file (its YAML and the ``--set``
overrides); the pipeline validates the config later, as always. A wrong guess costs time
only: a server started for a run that uses no pool idles and exits with the run; a run the
guess missed starts its server as before. The pool's workers take the variables they need
(the database URL, ``.env``'s) from the run when they start, not from the server's start.

This module imports only the standard library and PyYAML.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["POOL_MODULES", "expected_pool_module", "warm_fork_server"]

POOL_MODULES = {"train": "Orchestration.fleet", "score": "Orchestration.fleet_scoring"}
"""The module whose tasks a fleet command runs on the pool: what its server preloads."""

_VALUE_OPTIONS = frozenset(
    {
        "--config",
        "--set",
        "--log-file",
        "--plots",
        "--asset",
        "--start",
        "--end",
        "--version",
        "--output",
        "--fail-on",
    }
)
"""Options followed by a value (``--name value``), so that the value is not the command."""
_WATCHED = ("data.asset_col", "fleet.executor", "fleet.workers")


def _options(argv: Sequence[str]) -> tuple[str | None, dict[str, list[str]]]:
    """The command (the first token that is neither an option nor an option's value) and the
    values of the options in :data:`_VALUE_OPTIONS`."""
    command: str | None = None
    values: dict[str, list[str]] = {}
    tokens = iter(argv)
    for token in tokens:
        name, equals, value = token.partition("=")
        if name in _VALUE_OPTIONS:
            values.setdefault(name, []).append(value if equals else next(tokens, ""))
        elif command is None and not token.startswith("-"):
            command = token
    return command, values


def _settings(config: Path, overrides: list[str]) -> dict[str, Any]:
    """The :data:`_WATCHED` keys' values in ``config`` (when it exists), then ``overrides``.

    Raises:
        OSError, yaml.YAMLError, ValueError: the file or an override cannot be read.
    """
    raw = yaml.safe_load(config.read_text(encoding="utf-8-sig")) if config.exists() else {}
    found: dict[str, Any] = {}
    for key in _WATCHED:
        section, _, name = key.partition(".")
        part = raw.get(section) if isinstance(raw, dict) else None
        if isinstance(part, dict) and name in part:
            found[key] = part[name]
    for assignment in overrides:
        key, _, text = assignment.partition("=")
        if key.strip() in _WATCHED:
            found[key.strip()] = yaml.safe_load(text)
    return found


def expected_pool_module(
    argv: Sequence[str], *, default_command: str | None = None, cwd: Path | None = None
) -> str | None:
    """The module a run with these arguments will preload in the local pool's fork server,
    or None when it will likely use none (not a fleet, one asset, Dask, one worker) or the
    config cannot be read here.

    Args:
        argv: the arguments after the script's name.
        default_command: the command of a script that takes none (``main.py``: ``train``).
        cwd: where a relative ``--config`` (and the default ``config.yaml``) is found.
    """
    command, values = _options(argv)
    command = default_command or command or "train"  # orchestrate.py alone trains
    if command not in POOL_MODULES or values.get("--asset"):
        return None
    base = Path.cwd() if cwd is None else cwd
    config = base / (values.get("--config") or ["config.yaml"])[-1]
    try:
        found = _settings(config, values.get("--set", []))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    workers = found.get("fleet.workers") or os.cpu_count() or 1
    if not found.get("data.asset_col") or found.get("fleet.executor", "local") != "local":
        return None
    if not isinstance(workers, int) or workers < 2:
        return None
    return POOL_MODULES[command]


def warm_fork_server(
    argv: Sequence[str], *, default_command: str | None = None, cwd: Path | None = None
) -> str | None:
    """Start the fork server, preloading :func:`expected_pool_module`, when a run with these
    arguments will likely use the local pool. Call it from a script's ``__main__`` block
    only: the server imports the script as its main module.

    Returns:
        The module preloaded, or None when no server was started.
    """
    module = expected_pool_module(argv, default_command=default_command, cwd=cwd)
    if module is None or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    try:
        multiprocessing.set_forkserver_preload([module])
        multiprocessing.forkserver.ensure_running()
    except OSError:  # no server: the pool starts its own, as without this module
        return None
    return module
