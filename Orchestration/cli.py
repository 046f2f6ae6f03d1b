"""Command line of ``main.py`` and ``orchestrate.py``: parsing, logging, output, exit codes.

Logs go to stderr (and ``--log-file``); results go to stdout, as readable tables or, with
``--json``, as one JSON object with a ``status`` member. Every status code has its own exit
code (see :class:`ExitCode`), so cron can tell failures apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from Database import redact

from .config import DEFAULT_CONFIG_PATH, LoadedConfig, UsageError, load_config
from .context import database_secrets, load_environment
from .status import ExitCode, Status, status_for

__all__ = ["main", "main_train"]

logger = logging.getLogger(__name__)

EXIT_CODES_HELP = """exit codes:
  0  ok              the run succeeded
  1  error           an unexpected error (see the log)
  2  invalid-config  config.yaml, --set or the command line is invalid
  3  invalid-input   the data cannot be used (missing column, NaN-only axis, duplicates, ...)
  4  missing-model   no registry or no such version (train one with: python main.py)
  5  db-error        the database is unreachable or refused a statement
  6  alert events    score --fail-on alert found alert events (and no error events)
  7  error events    score --fail-on alert|error found error events
  8  registry-error  a model version fails verification (changed or missing file), or the
                     registry, plots.dir or --output cannot be written (read-only, full disk,
                     a file where a folder is expected)
  9  fleet-partial   a fleet run (data.asset_col) finished, but some assets failed (see
                     --json "assets"; the others were trained or scored)
  10  stale          score found no new rows and the newest sample is older than
                     scoring.stale_after: the source stopped delivering data
  11  unhealthy      training refused an axis whose sensor health is graded low (flat,
                     mostly missing, a counter; health.on_low: refuse)
"""


def _setup_logging(log_file: str | None, verbose: bool) -> None:
    """Log to stderr and, with ``--log-file``, also append to that file.

    Raises:
        UsageError: the log file cannot be opened for appending (a folder, no permission, a
            parent that is a file); stderr logging is set up all the same.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(sys.stderr)],
        force=True,
    )
    for noisy in ("matplotlib", "PIL", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not log_file:
        return
    handler = _log_file_handler(Path(log_file))
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)


def _log_file_handler(path: Path) -> logging.FileHandler:
    """A handler appending to ``path`` (its folders created); UsageError saying why not."""
    try:
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if path.is_dir():
            problem = "is a folder"
        elif blocking is not None:
            problem = f"cannot be created: {blocking} is a file, not a folder"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            return logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        problem = f"cannot be opened for appending ({exc.strerror or exc})"
    raise UsageError(
        f"--log-file {path} {problem}; give the path of a file in a folder you can write to, "
        "e.g. --log-file out/logs/run.log"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(_jsonable(payload), indent=2, allow_nan=False))


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """Options accepted both before and after the command.

    Subcommands declare them with ``SUPPRESS`` defaults, so a value given before the command
    (``orchestrate.py --set a=b registry list``) is not overwritten by the subcommand's default.
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        type=Path,
        default=default(None),
        help=f"config file (default: {DEFAULT_CONFIG_PATH} in the working directory)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=default([]),
        metavar="KEY=VALUE",
        help="override one config key, value parsed as YAML (repeatable), "
        "e.g. --set data.table=robot_a",
    )
    parser.add_argument(
        "--log-file", default=default(None), help="also append the log to this file (for cron)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="debug logging"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON object on stdout",
    )


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time, e.g. 2026-01-05T12:00:00Z"
        ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _delimiter(text: str) -> str:
    from Database import parse_delimiter

    try:
        return parse_delimiter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser(prog: str = "orchestrate.py") -> argparse.ArgumentParser:
    """The argument parser of ``orchestrate.py`` (``main.py`` uses the ``train`` part)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="ML box: per-axis baselines and thresholds from SQL telemetry, a versioned "
        "model registry, and scoring. Without a command, runs 'train'.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(sub)
        return sub

    train = command("train", "train, evaluate, threshold and register a version")
    _plots_option(train)
    profile_command = command("profile", "profile the training window")
    profile_command.add_argument("--asset", help="a fleet's asset (needed with data.asset_col)")
    score = command("score", "score new data against a registered version")
    score.add_argument("--version", default="latest", help="registry version (default: latest)")
    score.add_argument(
        "--start",
        type=_timestamp,
        help="window start, ISO-8601 (default: "
        "continue where the last score run for this table and version ended)",
    )
    score.add_argument("--end", type=_timestamp, help="window end, exclusive (default: now)")
    score.add_argument("--output", type=Path, help="write one row per sample to this CSV")
    score.add_argument(
        "--fail-on",
        choices=["alert", "error"],
        help="exit 6/7 when events of this severity (or worse) were found",
    )
    score.add_argument(
        "--asset",
        help="a fleet's asset (data.asset_col); without it every asset is scored with its "
        "own latest version",
    )

    evaluate = command(
        "evaluate", "score a range without writing and compare it with the labelled anomalies"
    )
    evaluate.add_argument("--version", default="latest", help="registry version (default: latest)")
    evaluate.add_argument(
        "--start", type=_timestamp, help="range start (default: after the training window)"
    )
    evaluate.add_argument("--end", type=_timestamp, help="range end, exclusive (default: now)")

    ingest = command("ingest", "load a CSV export into the configured database")
    ingest.add_argument("csv", type=Path, help="CSV file with a header row")
    ingest.add_argument("--table", required=True, help="table to create (or append to)")
    ingest.add_argument(
        "--schema",
        choices=["wide", "long"],
        default="wide",
        help="wide: time + one column per axis; long: time, axis_id, value",
    )
    ingest.add_argument("--time-col", default=None, help="time column (default: data.time_col)")
    ingest.add_argument(
        "--if-exists",
        choices=["fail", "append", "append-new"],
        default="fail",
        help="what to do when the table exists: fail (default), append every row, or "
        "append-new: skip rows whose time (long: time and axis id) is already in the table "
        "or earlier in the file, and report how many",
    )
    ingest.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        help="field separator, one character (default ','); 'tab' or '\\t' for tabs",
    )

    demo = command("demo-db", "(re)build the embedded SQLite demo database")
    demo.add_argument("--rows", type=int, default=320_000, help="samples (default 320000, ~7 days)")
    demo.add_argument(
        "--schema",
        choices=["wide", "long"],
        default="wide",
        help="long also writes robot_samples_long (ts, axis_id, value)",
    )

    registry = command("registry", "list or show registered versions")
    registry_commands = registry.add_subparsers(dest="registry_command", metavar="ACTION")
    registry_commands.required = True
    _common(
        registry_commands.add_parser(
            "list", help="all versions, newest last (a fleet: each asset's latest version)"
        )
    )
    show = registry_commands.add_parser("show", help="thresholds and metrics of a version")
    _common(show)
    show.add_argument("version", nargs="?", default="latest")
    show.add_argument("--asset", help="a fleet's asset (needed when data.asset_col is set)")

    fleet = command("fleet", "the fleet state table: status, version, samples per asset")
    fleet.add_argument(
        "--compare",
        action="store_true",
        help="compare the assets: tightest headroom between typical residual and MaxC, "
        "difficulty relative to the fleet",
    )
    drift = command("drift", "which axes drift (CUSUM/EWMA of the residual level), since when")
    drift.add_argument("--asset", help="only this asset of a fleet (data.asset_col)")
    return parser


def _plots_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plots",
        type=_asset_list,
        help="fleets: draw the plots of these assets (comma-separated ids) or 'all', besides "
        "those needing attention (default: plots.assets)",
    )


def _asset_list(text: str) -> str | list[str]:
    if text.strip() == "all":
        return "all"
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give 'all' or comma-separated asset ids, e.g. r1,r2")
    return ids


def _run(
    args: argparse.Namespace, handler: Callable[[argparse.Namespace, LoadedConfig], int]
) -> int:
    secrets: list[str] = []
    try:
        _setup_logging(args.log_file, args.verbose)
        loaded = load_config(args.config, args.overrides)
        load_environment(loaded)
        secrets = database_secrets(loaded)
        return handler(args, loaded)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return int(ExitCode.ERROR)
    except Exception as exc:  # every failure becomes a status, never a traceback for cron
        status = status_for(exc)
        status = Status(status.code, redact(status.detail, secrets))
        if status.code == "error":
            logger.exception("unexpected failure")
        else:
            logger.error("%s", status.detail)
        if getattr(args, "json", False):
            _print_json({"status": status.to_dict()})
        return int(status.exit_code)


def _ok(detail: str) -> dict[str, str]:
    return Status("ok", detail).to_dict()


def _cmd_profile(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .orchestrator import run_profile
    from .report import format_profile

    asset = None
    if loaded.config.data.asset_col is not None:
        if args.asset is None:
            raise UsageError(
                "profile: data.asset_col is set; name the asset to profile with --asset ID "
                "(python orchestrate.py fleet lists them)"
            )
        from .fleet_scoring import resolve_asset

        asset = resolve_asset(loaded, args.asset)
    elif args.asset is not None:
        raise UsageError(
            f"--asset {args.asset!r}: data.asset_col is not set, so the table is one machine"
        )
    result = run_profile(loaded, asset=asset)
    if args.json:
        _print_json({"status": _ok(f"profiled {result.rows} rows"), "profile": result.to_dict()})
    else:
        print(format_profile(result, loaded.config.data.table))
    return int(ExitCode.OK)


def _cmd_demo_db(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from Database import DEMO_LONG_TABLE, build_demo_database

    try:
        path = build_demo_database(
            loaded.path(loaded.config.database.embedded_path), rows=args.rows, schema=args.schema
        )
    except ValueError as exc:  # demo_data refuses too few rows before anything is written
        raise UsageError(f"demo-db --rows {args.rows}: {exc}") from None
    detail = f"built the demo database {path} with {args.rows} samples"
    if args.schema == "long":
        detail += (
            f"; to use the LONG table: --set data.table={DEMO_LONG_TABLE} "
            "--set 'data.axes=[1,2,3,4,5,6,7,8]'"
        )
    if args.json:
        _print_json({"status": _ok(detail), "path": str(path)})
    else:
        print(detail)
    return int(ExitCode.OK)


def _cmd_ingest(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from Database import ingest_csv

    from .context import open_database

    data = loaded.config.data
    session = open_database(loaded, access="create")
    try:
        result = ingest_csv(
            session.engine,
            session.target,
            args.csv,
            args.table,
            layout=args.schema,
            time_col=args.time_col or data.time_col,
            axis_id_col=data.axis_id_col,
            value_col=data.value_col,
            if_exists=args.if_exists,
            delimiter=args.delimiter,
        )
    finally:
        session.close()
    hint = f"--set data.table={result.table} --set 'data.axes={json.dumps(result.axes)}'"
    if args.time_col:
        hint += f" --set data.time_col={args.time_col}"
    skipped = f" ({result.skipped} rows already there, skipped)" if result.skipped else ""
    detail = f"loaded {result.rows} rows into {result.table}{skipped}; use it with {hint}"
    if args.json:
        _print_json(
            {
                "status": _ok(detail),
                "table": result.table,
                "rows": result.rows,
                "skipped": result.skipped,
                "axes": result.axes,
            }
        )
    else:
        print(detail)
    return int(ExitCode.OK)


def _cmd_train(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .orchestrator import run_training
    from .report import format_training

    if loaded.config.data.asset_col is not None:
        return _cmd_train_fleet(args, loaded)
    result = run_training(loaded)
    if args.json:
        _print_json({"status": _ok(f"registered {result.version}"), **result.to_dict()})
    else:
        print(format_training(result))
    return int(ExitCode.OK)


def _cmd_train_fleet(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .fleet import run_fleet_training
    from .report import format_fleet_training

    report = run_fleet_training(loaded, plots=getattr(args, "plots", None))
    status = report.status
    if args.json:
        _print_json({"status": status.to_dict(), **report.to_dict()})
    else:
        print(format_fleet_training(report))
    return int(status.exit_code)


def _cmd_fleet(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .drift import flag_retraining
    from .fleet import read_fleet_state
    from .report import format_fleet_state

    config = loaded.config
    state = flag_retraining(loaded, read_fleet_state(loaded))
    if getattr(args, "compare", False):
        from .drift import compare_fleet

        payload, text = compare_fleet(loaded, state)
        if args.json:
            _print_json({"status": _ok(f"{len(state)} assets compared"), **payload})
        else:
            print(text)
        return int(ExitCode.OK)
    payload, text = format_fleet_state(state, config.fleet.table, config.data.table)
    if args.json:
        _print_json({"status": _ok(f"{len(state)} assets in {config.fleet.table}"), **payload})
    else:
        print(text)
    return int(ExitCode.OK)


def _cmd_drift(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .drift import format_drift_state, read_drift

    config = loaded.config
    table = config.drift.table_for(config.events.table)
    state = read_drift(loaded, asset=args.asset)
    payload, text = format_drift_state(state, table)
    if args.json:
        detail = f"{payload['drifting']} of {len(state)} axes drifting ({table})"
        _print_json({"status": _ok(detail), **payload})
    else:
        print(text)
    return int(ExitCode.OK)


def _cmd_score(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .destinations import check_output_file
    from .report import format_scoring
    from .scoring import run_scoring

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UsageError(
            f"--end {args.end.isoformat()} must be after --start {args.start.isoformat()} "
            "(the window is [start, end))"
        )
    fleet = loaded.config.data.asset_col is not None
    if fleet and args.asset is None:
        return _score_fleet(args, loaded)
    if args.asset is not None and not fleet:
        raise UsageError(
            f"--asset {args.asset!r}: data.asset_col is not set, so the table is one machine; "
            "set data.asset_col to the column holding the asset ids"
        )
    if args.output is not None:
        check_output_file(args.output)  # before the model is loaded and the window read
    asset = None
    if args.asset is not None:
        from .fleet_scoring import resolve_asset

        asset = resolve_asset(loaded, args.asset)
    report = run_scoring(
        loaded,
        version=args.version,
        start=args.start,
        end=args.end,
        output=args.output,
        asset=asset,
    )
    if args.json:
        _print_json({"status": report.status.to_dict(), **report.to_dict()})
    else:
        print(format_scoring(report))
    return int(report.exit_code(args.fail_on))


def _score_fleet(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .fleet_scoring import run_fleet_scoring
    from .report import format_fleet_scoring

    if args.version != "latest" or args.output is not None:
        raise UsageError(
            "--version and --output score one asset: add --asset ID (data.asset_col is set; "
            "without --asset every asset is scored with its own latest version)"
        )
    report = run_fleet_scoring(loaded, start=args.start, end=args.end)
    if args.json:
        _print_json({"status": report.status.to_dict(), **report.to_dict()})
    else:
        print(format_fleet_scoring(report))
    return int(report.exit_code(args.fail_on))


def _cmd_evaluate(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .evaluation import run_evaluation
    from .report import format_evaluation

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UsageError(
            f"--end {args.end.isoformat()} must be after --start {args.start.isoformat()} "
            "(the range is [start, end))"
        )
    run = run_evaluation(loaded, version=args.version, start=args.start, end=args.end)
    if args.json:
        detail = f"evaluated {run.version} against {run.labels_table}"
        _print_json({"status": _ok(detail), **run.to_dict()})
    else:
        print(format_evaluation(run))
    return int(ExitCode.OK)


def _cmd_registry(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .report import fleet_registry_list, registry_list, registry_show

    root = loaded.path(loaded.config.registry.root_dir)
    fleet = loaded.config.data.asset_col is not None
    asset = getattr(args, "asset", None)
    if args.registry_command == "list":
        payload, text = fleet_registry_list(loaded) if fleet else registry_list(root)
    else:
        if fleet and asset is None:
            raise UsageError(
                "registry show: data.asset_col is set, so versions belong to assets; name one "
                "with --asset ID (python orchestrate.py registry list shows them)"
            )
        if asset is not None:
            from .fleet import asset_registry

            root = asset_registry(loaded, asset).root_dir
        payload, text = registry_show(root, args.version)
    if args.json:
        _print_json({"status": _ok(f"registry {root}"), **payload})
    else:
        print(text)
    return int(ExitCode.OK)


_HANDLERS: dict[str, Callable[[argparse.Namespace, LoadedConfig], int]] = {
    "train": _cmd_train,
    "profile": _cmd_profile,
    "score": _cmd_score,
    "evaluate": _cmd_evaluate,
    "ingest": _cmd_ingest,
    "demo-db": _cmd_demo_db,
    "registry": _cmd_registry,
    "fleet": _cmd_fleet,
    "drift": _cmd_drift,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``orchestrate.py``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return _run(args, _HANDLERS[args.command or "train"])


def main_train(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``main.py``: the ``train`` command only."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Nightly training: extract the window, fit per-axis models, evaluate, "
        "compute thresholds and register a new version.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, top=True)
    _plots_option(parser)
    return _run(parser.parse_args(argv), _cmd_train)
