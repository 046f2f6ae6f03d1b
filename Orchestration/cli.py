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
  13  missing-ml-extras  predictor train/apply: a library it needs is not installed
  14  missing-ml-models  apply: an asset has no trained predictor
  15  invalid-ml-input   predictor train/apply: unusable features (no rows, one class, ...)
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
    # json_text: json.dumps(indent=2)'s text, faster (a fleet's payload holds every asset);
    # _jsonable left no NaN or infinity.
    from ModelRegistry.jsontext import json_text

    print(json_text(_jsonable(payload)))


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


def _since(text: str) -> dt.timedelta | dt.datetime:
    from Reports import parse_since

    try:
        return parse_since(text)
    except ValueError:
        pass
    try:
        return _timestamp(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (90m, 24h, 7d) nor an ISO-8601 time "
            "(2026-01-10T06:00:00Z)"
        ) from None


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
    score.add_argument(
        "--version",
        default="champion",
        help="registry version or alias (default: champion, the newest version until one is "
        "promoted)",
    )
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
        "own champion version",
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

    registry = command("registry", "list, show, promote, roll back, pin, diff versions")
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
    _lifecycle_commands(registry_commands)

    fleet = command("fleet", "the fleet state table: status, version, samples per asset")
    fleet.add_argument(
        "--compare",
        action="store_true",
        help="compare the assets: tightest headroom between typical residual and MaxC, "
        "difficulty relative to the fleet",
    )
    drift = command("drift", "which axes drift (CUSUM/EWMA of the residual level), since when")
    drift.add_argument("--asset", help="only this asset of a fleet (data.asset_col)")
    command(
        "schedule",
        "run training and scoring on the schedule: block (for machines without cron); "
        "SIGTERM or Ctrl-C stops it",
    )

    report = command(
        "report", "the morning digest: events of the last day per asset, worst first, plots"
    )
    report.add_argument(
        "--since",
        type=_since,
        help="how far back from the newest sample scored (90m, 24h, 7d) or from when "
        "(ISO-8601); default report.since (24h)",
    )
    report.add_argument("--asset", help="a fleet's asset only (default: every asset)")
    report.add_argument(
        "--output", type=Path, help="write the self-contained HTML page (plots embedded) here"
    )
    _events_parsers(command)
    predictor = command("predictor", "failure predictors per asset (see docs/prediction.md)")
    predictor_actions = predictor.add_subparsers(dest="predictor_command", metavar="ACTION")
    predictor_actions.required = True
    train_predictor = predictor_actions.add_parser(
        "train", help="train, validate in time order and publish a predictor per asset"
    )
    _common(train_predictor)
    train_predictor.add_argument("--asset", help="only this asset")
    apply = command("apply", "write the failure probability per asset and time bucket")
    apply.add_argument("--asset", help="only this asset")
    apply.add_argument(
        "--since",
        type=_timestamp,
        help="from this bucket on (default: where the last apply of the asset stopped)",
    )
    return parser


def _lifecycle_commands(commands: Any) -> None:
    """``registry promote V | rollback | pin V | unpin V | diff A B``, each with ``--asset``."""
    actions = {
        "promote": (
            "make VERSION the champion (scoring uses it); the champion becomes previous",
            1,
        ),
        "rollback": ("swap champion and previous (a second rollback undoes the first)", 0),
        "pin": ("keep VERSION whatever the retention (registry gc)", 1),
        "unpin": ("drop the pin of VERSION", 1),
        "diff": ("thresholds, families and metrics of two versions side by side", 2),
    }
    for name, (help_text, versions) in actions.items():
        action = commands.add_parser(name, help=help_text)
        _common(action)
        if versions == 1:
            action.add_argument("version", help="a version tag, or an alias (latest, previous)")
        elif versions == 2:
            action.add_argument("first", help="the version compared from")
            action.add_argument("second", help="the version compared to")
        action.add_argument("--asset", help="a fleet's asset (needed when data.asset_col is set)")
    gc = commands.add_parser(
        "gc",
        help="remove old versions; never latest, champion, previous, pinned ones or versions "
        "whose events are still stored",
    )
    _common(gc)
    gc.add_argument("--keep", type=_count, required=True, help="keep the newest N versions")
    gc.add_argument(
        "--older-than",
        type=_duration,
        help="remove only versions created longer ago than this (30d, 12h, 2w); events "
        "ending within it protect their version",
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    gc.add_argument("--asset", help="one asset of a fleet (default: every asset)")


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0, e.g. 5")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1, e.g. 20")
    return int(text)


def _duration(text: str) -> dt.timedelta:
    from DataExtractionAnalysis import parse_duration

    duration = parse_duration(text)
    if duration is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use a number and a unit s, m, h, d or w, e.g. 30d"
        )
    return duration


def _events_parsers(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``events list | label | import``: operator feedback on events (see docs/feedback.md)."""
    events = command("events", "list stored events with their verdicts, label them, import labels")
    actions = events.add_subparsers(dest="events_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="events, newest first, with peak, ratio, verdict")
    _common(listing)
    listing.add_argument("--asset", help="only this asset's events")
    listing.add_argument("--since", type=_timestamp, help="only events ending at or after this")
    listing.add_argument("--severity", choices=["alert", "error"], help="only this severity")
    listing.add_argument("--unlabelled", action="store_true", help="only events without verdict")
    listing.add_argument(
        "--limit", type=_positive, default=100, help="at most this many (default 100)"
    )
    label = actions.add_parser("label", help="give events a verdict (survives re-scoring)")
    _common(label)
    label.add_argument("ids", nargs="+", type=int, metavar="ID", help="event ids (events list)")
    label.add_argument(
        "--as", dest="verdict", required=True, choices=["confirmed", "false-positive", "ignore"]
    )
    label.add_argument("--note", help="free text kept with the verdict")
    importing = actions.add_parser("import", help="add failure windows from a CSV to labels.table")
    _common(importing)
    importing.add_argument(
        "csv", type=Path, help="CSV with start,end[,asset,axis,kind,severity] (ISO-8601 times)"
    )


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
    return _scored(args, loaded, report, format_scoring(report))


def _score_fleet(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .fleet_scoring import run_fleet_scoring
    from .report import format_fleet_scoring

    if args.version != "champion" or args.output is not None:
        raise UsageError(
            "--version and --output score one asset: add --asset ID (data.asset_col is set; "
            "without --asset every asset is scored with its own champion version)"
        )
    report = run_fleet_scoring(loaded, start=args.start, end=args.end)
    return _scored(args, loaded, report, format_fleet_scoring(report))


def _scored(args: argparse.Namespace, loaded: LoadedConfig, report: Any, text: str) -> int:
    """Print a score run's answer and give its exit code; with ``predictor.apply_on_score``,
    apply the failure predictors first (the answer gains ``failure_risk``; its ``ml_status``
    decides the exit code when scoring's is 0)."""
    payload = {"status": report.status.to_dict(), **report.to_dict()}
    code = int(report.exit_code(args.fail_on))
    if loaded.config.predictor.apply_on_score:
        from .prediction import apply_predictors

        risk = apply_predictors(loaded, asset=getattr(args, "asset", None))
        payload["failure_risk"] = risk.to_dict()
        text += f"\nfailure risk: {risk.code}: {risk.detail}"
        code = code or int(Status(risk.code, risk.detail).exit_code)
    if args.json:
        _print_json(payload)
    else:
        print(text)
    return code


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
    if args.registry_command in {"promote", "rollback", "pin", "unpin", "diff", "gc"}:
        return _cmd_lifecycle(args, loaded, asset)
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


def _cmd_lifecycle(args: argparse.Namespace, loaded: LoadedConfig, asset: str | None) -> int:
    from .lifecycle import alias_action, diff_versions, lineage
    from .retention import collect_garbage

    action = args.registry_command
    if action == "gc":
        payload, text = collect_garbage(
            loaded, keep=args.keep, older_than=args.older_than, dry_run=args.dry_run, asset=asset
        )
        detail = text.splitlines()[-1]
    else:
        registry = lineage(loaded, asset, action)
        if action == "diff":
            payload, text = diff_versions(registry, args.first, args.second)
        else:
            payload, text = alias_action(registry, action, getattr(args, "version", None))
        detail = text.splitlines()[0]
    if args.json:
        _print_json({"status": _ok(detail), **payload})
    else:
        print(text)
    return int(ExitCode.OK)


def _cmd_events(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .feedback import format_events, import_labels, label_events, list_events

    if args.events_command == "import":
        result = import_labels(loaded, args.csv)
        detail = (
            f"imported {result.rows} label window(s) into {result.table} "
            f"({result.skipped} already there)"
        )
        payload: dict[str, Any] = {
            "table": result.table,
            "rows": result.rows,
            "skipped": result.skipped,
        }
        text = detail
    else:
        if args.events_command == "list":
            events = list_events(
                loaded,
                asset=args.asset,
                since=args.since,
                severity=args.severity,
                unlabelled=args.unlabelled,
                limit=args.limit,
            )
            detail = f"{len(events)} event(s) of {loaded.config.data.table}"
        else:
            events = label_events(loaded, args.ids, args.verdict, args.note)
            detail = f"labelled {len(events)} event(s) {args.verdict}"
        payload = {"events": events.astype(object).where(events.notna(), None).to_dict("records")}
        text = format_events(events) if len(events) else detail
    if args.json:
        _print_json({"status": _ok(detail), **payload})
    else:
        print(text)
    return int(ExitCode.OK)


def _cmd_schedule(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from Scheduling import Job, run_schedule

    config = loaded.config.schedule
    base = [sys.executable, str(Path(__file__).resolve().parents[1] / "orchestrate.py")]
    if args.config is not None:
        base += ["--config", str(Path(args.config).resolve())]
    base += [f"--set={override}" for override in args.overrides]
    if args.log_file is not None:
        base += ["--log-file", str(Path(args.log_file).resolve())]
    jobs = [
        Job(name, when, [*base, name], loaded.path(lock))
        for name, when, lock in (
            ("train", config.train, config.train_lock),
            ("score", config.score, config.score_lock),
        )
        if when is not None
    ]
    if not jobs:
        raise UsageError(
            "schedule: schedule.train and schedule.score are both null, nothing to run; set "
            "one, e.g. --set 'schedule.train=15 2 * * *'"
        )
    # APScheduler logs every start and end of a job at INFO; ours says what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return run_schedule(jobs, timezone=config.timezone, describe=_exit_status)


def _exit_status(code: int) -> str:
    """The status name of an exit code (``ok``, ``missing-model``, ...; signals by number)."""
    try:
        return ExitCode(code).name.lower().replace("_", "-")
    except ValueError:
        return f"killed by signal {-code}" if code < 0 else "unknown"


def _cmd_report(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from Reports import render_html, render_text

    from .destinations import check_output_file
    from .digest import run_digest, write_html

    if args.output is not None:
        check_output_file(args.output)  # before anything is read
    asset = None
    if args.asset is not None:
        if loaded.config.data.asset_col is None:
            raise UsageError(
                f"--asset {args.asset!r}: data.asset_col is not set, so the table is one machine"
            )
        from .fleet_scoring import resolve_asset

        asset = str(resolve_asset(loaded, args.asset))
    run = run_digest(loaded, since=args.since, asset=asset, plots=args.output is not None)
    digest = run.digest
    if args.output is not None:
        write_html(args.output, render_html(digest, run.images))
    top = digest.top[0] if digest.top else None
    detail = f"digest of {digest.source_table}: {len(digest.assets)} asset(s) with events" + (
        "" if top is None else f", worst {top['asset'] or ''} {top['axis']} {top['severity']}"
    )
    if args.json:
        payload = {"status": _ok(detail), **digest.to_dict(), "timings": run.timings}
        payload["output"] = None if args.output is None else str(args.output)
        _print_json(payload)
    else:
        print(render_text(digest))
        if args.output is not None:
            print(f"\nHTML digest: {args.output}")
    return int(ExitCode.OK)


def _cmd_prediction(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from .prediction import apply_predictors, train_predictors

    if args.command == "apply":
        run = apply_predictors(loaded, asset=args.asset, since=args.since)
    else:
        run = train_predictors(loaded, asset=args.asset)
    status = Status(run.code, run.detail)
    if args.json:
        _print_json({"status": status.to_dict(), **run.to_dict()})
    else:
        for answer in run.answers:
            print(f"{answer.asset or 'machine'}: {answer.code}: {answer.detail}")
        print(run.detail)
    return int(status.exit_code)


_HANDLERS: dict[str, Callable[[argparse.Namespace, LoadedConfig], int]] = {
    "train": _cmd_train,
    "profile": _cmd_profile,
    "score": _cmd_score,
    "evaluate": _cmd_evaluate,
    "ingest": _cmd_ingest,
    "demo-db": _cmd_demo_db,
    "registry": _cmd_registry,
    "fleet": _cmd_fleet,
    "schedule": _cmd_schedule,
    "report": _cmd_report,
    "events": _cmd_events,
    "predictor": _cmd_prediction,
    "apply": _cmd_prediction,
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
