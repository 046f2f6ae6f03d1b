"""Loading and validating config.yaml once, with ``--set key.path=value`` overrides.

Each stage owns the pydantic model of its section; this module composes them into
:class:`AppConfig` and turns pydantic's errors into one message per problem, each with its
key path, e.g. ``thresholds.minc_percentile: must be between 0 and 100, got 120``.

Error text is bounded whatever the input: values are echoed shortened, at most
:data:`MAX_PROBLEMS_SHOWN` problems are spelled out (the rest are counted), and YAML aliases may
not expand a document by more than :data:`MAX_ALIAS_EXPANSION` values ("billion laughs").
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from Database import DatabaseConfig
from DataExtractionAnalysis import DataConfig, HealthPolicy
from DataPreparation import PrepConfig
from Fleet import FleetConfig
from Labels import LabelsConfig
from ModelEvaluation import PlotConfig
from ModelRegistry import RegistryConfig
from ModelSelection import ModelConfig
from Prediction import PredictorConfig
from Reports import ReportConfig
from Scheduling import ScheduleConfig
from Scoring import DriftConfig, EventsConfig, ScoringConfig
from Thresholding import ThresholdPolicy
from Tracking import TrackingConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "MAX_ALIAS_EXPANSION",
    "MAX_PROBLEMS_SHOWN",
    "AppConfig",
    "ConfigError",
    "LoadedConfig",
    "UsageError",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("config.yaml")
MAX_PROBLEMS_SHOWN = 10
"""Problems spelled out in one error message; the rest are only counted."""
MAX_ALIAS_EXPANSION = 10_000
"""Most values YAML aliases (``*name``) may add to a document by repeating an anchored part."""
_MAX_PROBLEM_CHARS = 500

_ECHO = reprlib.Repr()
_ECHO.maxstring = _ECHO.maxother = 80
_ECHO.maxlist = _ECHO.maxtuple = _ECHO.maxdict = _ECHO.maxset = 6
_ECHO.maxlevel = 3


def _echo(value: object) -> str:
    """``repr(value)`` shortened to a few dozen characters, however large the value."""
    return _ECHO.repr(value)


def _clip(text: str, limit: int = _MAX_PROBLEM_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, keeping its end (where the fix usually is)."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3) :]
    return f"{head} [... {len(text) - len(head) - len(tail):,} characters left out ...] {tail}"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists the problems, each with its key path.

    The message shows one problem on one line, several as a list; at most
    :data:`MAX_PROBLEMS_SHOWN` of them, each cut to about 500 characters, then the count of
    the rest. ``omitted`` counts problems found but not even described (not in ``problems``).
    """

    def __init__(self, source: str, problems: Sequence[str], *, omitted: int = 0) -> None:
        self.source = source
        self.problems = list(problems)
        self.omitted = omitted
        shown = [_clip(problem) for problem in self.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(self.problems) - len(shown) + omitted
        if hidden:
            shown.append(f"... and {hidden} more problems (fix those above and run again)")
        if len(shown) == 1:
            super().__init__(f"invalid configuration ({_clip(source)}): {shown[0]}")
        else:
            lines = "\n".join(f"  - {problem}" for problem in shown)
            super().__init__(f"invalid configuration ({_clip(source)}):\n{lines}")


class UsageError(ValueError):
    """A command-line option is unusable (a bad value, or options that contradict each other)."""


class _UnusableYaml(ValueError):
    """Well-formed YAML that must not be used: aliases expanding too far, too deep, bad tag."""


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses alias bombs and leaves impossible dates as text.

    A date that does not exist (``2026-02-30``) stays a string, so validation reports it with
    its key path instead of PyYAML raising a bare ``ValueError``.
    """

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_alias_expansion(node)
        return node

    def construct_yaml_timestamp(self, node: yaml.Node) -> object:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)


def _check_alias_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases repeat more than MAX_ALIAS_EXPANSION values, or itself.

    PyYAML shares an anchored node between its aliases, so loading stays cheap; it is every
    later walk (validation, error messages) that meets the expanded tree: 9 levels of 10
    aliases are 10^9 values. Sizes are counted once per distinct node.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _UnusableYaml(
                f"the YAML alias at line {node.start_mark.line + 1} contains itself; "
                "write the value out instead"
            )
        open_nodes.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        sizes[key] = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        return sizes[key]

    expanded = size(root)
    added = expanded - len(sizes)
    if added > MAX_ALIAS_EXPANSION:
        raise _UnusableYaml(
            f"YAML aliases (*name) would expand the document by {added:,} values (at most "
            f"{MAX_ALIAS_EXPANSION:,} allowed); write the repeated parts out or use fewer aliases"
        )


def _parse_yaml(text: str) -> Any:
    """Parse YAML with :class:`_ConfigLoader`.

    Raises:
        yaml.YAMLError: the text is not well-formed YAML.
        _UnusableYaml: aliases expand too far or into themselves, nesting too deep, or a
            value cannot be built from its explicit tag (``!!int abc``).
    """
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: builds plain data only
    except RecursionError:
        raise _UnusableYaml("the YAML is nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, _UnusableYaml):
            raise
        raise _UnusableYaml(f"a YAML value cannot be read: {_clip(str(exc), 200)}") from None


class AppConfig(BaseModel):
    """The whole configuration. Unknown keys are errors at every level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    prep: PrepConfig = Field(default_factory=PrepConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    thresholds: ThresholdPolicy = Field(default_factory=ThresholdPolicy)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    plots: PlotConfig = Field(default_factory=PlotConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    health: HealthPolicy = Field(default_factory=HealthPolicy)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and the folder its relative paths are resolved against."""

    config: AppConfig
    source: str
    base_dir: Path

    def path(self, value: str) -> Path:
        """Resolve a path from the config (absolute stays; relative is from ``base_dir``)."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            str(path), ["file not found; pass --config PATH or create config.yaml"]
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None
    try:
        loaded = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"YAML syntax error at {where}{problem}"]) from None
    except _UnusableYaml as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            str(path), [f"top level must be a mapping of sections, got {_echo(loaded)}"]
        )
    # A section whose keys are all commented out reads as null: treat it as empty.
    return {key: {} if value is None else value for key, value in loaded.items()}


def _apply_override(raw: dict[str, Any], assignment: str, problems: list[str]) -> None:
    key, sep, text = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        problems.append(
            f"--set {_echo(assignment)}: expected KEY.PATH=VALUE, e.g. data.table=robot_a"
        )
        return
    try:
        value = _parse_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    except _UnusableYaml as exc:
        problems.append(f"--set {_clip(key, 100)}: {exc}")
        return
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = _clip(".".join(parts[: depth + 1]), 100)
            problems.append(f"--set {_clip(key, 100)}: {section} is not a section")
            return
        node = child
    node[parts[-1]] = value


def _key_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _field_bounds(loc: Sequence[int | str]) -> dict[str, float]:
    """The ge/gt/le/lt constraints declared on the field at ``loc`` (empty when none)."""
    model: type[BaseModel] | None = AppConfig
    info = None
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return {}
        info = model.model_fields[part]
        annotation = info.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    bounds: dict[str, float] = {}
    for item in info.metadata if info else []:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                bounds[name] = getattr(item, name)
    return bounds


def _range_message(bounds: dict[str, float], value: object) -> str:
    low = (
        ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    )
    high = (
        ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    )
    if low and high and low[0] == "ge" and high[0] == "le":
        text = f"must be between {low[1]:g} and {high[1]:g}"
    else:
        pieces = []
        if low:
            pieces.append(f"at least {low[1]:g}" if low[0] == "ge" else f"greater than {low[1]:g}")
        if high:
            pieces.append(f"at most {high[1]:g}" if high[0] == "le" else f"less than {high[1]:g}")
        text = "must be " + " and ".join(pieces)
    return f"{text}, got {_echo(value)}"


def _describe(error: dict[str, Any]) -> str:
    loc = error["loc"]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent_loc, name = loc[:-1], str(loc[-1])
        model: type[BaseModel] = AppConfig
        for part in parent_loc:
            field = model.model_fields.get(str(part))
            if field is None or not isinstance(field.annotation, type):
                break
            model = field.annotation
        valid = sorted(model.model_fields)
        close = difflib.get_close_matches(name[:100], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        path = _clip(_key_path(loc), 100)
        return f"{path}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bounds = _field_bounds(loc) or {k: v for k, v in error.get("ctx", {}).items()}
        return f"{_key_path(loc)}: {_range_message(bounds, error['input'])}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{_key_path(loc) or 'config'}: {message}"
    return f"{_key_path(loc) or 'config'}: {message}, got {_echo(error['input'])}"


def _under(loc: Sequence[int | str], key_paths: Sequence[str]) -> bool:
    """Whether the value at ``loc`` lies at or below one of ``key_paths`` (``data.axes``)."""
    path = _key_path(loc)
    return any(path == key or path.startswith((f"{key}.", f"{key}[")) for key in key_paths)


def _dedupe_union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``list[str] | list[int]`` reports each branch; keep one problem per element path."""
    seen: set[str] = set()
    kept = []
    for error in errors:
        loc = [p for p in error["loc"] if p not in ("list[str]", "list[int]")]
        key = _key_path(loc)
        if key in seen:
            continue
        seen.add(key)
        kept.append({**error, "loc": tuple(loc)})
    return kept


def load_config(path: Path | None = None, overrides: Sequence[str] = ()) -> LoadedConfig:
    """Read, override and validate the configuration.

    Args:
        path: YAML file (UTF-8, with or without BOM); None = ``config.yaml`` in the working
            directory when it exists, else the built-in defaults.
        overrides: ``KEY.PATH=VALUE`` strings; values are parsed as YAML.

    Returns:
        The validated config; relative paths resolve against the config file's folder.

    Raises:
        ConfigError: every problem found, each with its key path.
    """
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    raw = _read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "built-in defaults"
    problems: list[str] = []
    for assignment in overrides:
        _apply_override(raw, assignment, problems)
    try:
        config = AppConfig.model_validate(raw)
    except ValidationError as exc:
        errors = _dedupe_union_errors(exc.errors())
        # Describe only what the message shows: 200,000 unknown keys must not take minutes.
        described = errors[: max(0, MAX_PROBLEMS_SHOWN - len(problems))]
        overridden = [assignment.partition("=")[0].strip() for assignment in overrides]
        problems.extend(
            _describe(error) + (" (from --set)" if _under(error["loc"], overridden) else "")
            for error in described
        )
        raise ConfigError(source, problems, omitted=len(errors) - len(described)) from None
    if problems:
        raise ConfigError(source, problems)
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    return LoadedConfig(config=config, source=source, base_dir=base_dir)
