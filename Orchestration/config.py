"""Loading and validating config.yaml once, with ``--set key.path=value`` overrides.

Each stage owns the pydantic model of its section; this module composes them into
:class:`AppConfig` and turns pydantic's errors into one message per problem, each with its
key path, e.g. ``thresholds.minc_percentile: must be between 0 and 100, got 120``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from Database import DatabaseConfig
from DataExtractionAnalysis import DataConfig
from DataPreparation import PrepConfig
from ModelEvaluation import PlotConfig
from ModelRegistry import RegistryConfig
from ModelSelection import ModelConfig
from Scoring import EventsConfig, ScoringConfig
from Thresholding import ThresholdPolicy

__all__ = ["DEFAULT_CONFIG_PATH", "AppConfig", "ConfigError", "LoadedConfig", "load_config"]

DEFAULT_CONFIG_PATH = Path("config.yaml")


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem with its key path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


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
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)


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
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"YAML syntax error at {where}{problem}"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(str(path), [f"top level must be a mapping of sections, got {loaded!r}"])
    # A section whose keys are all commented out reads as null: treat it as empty.
    return {key: {} if value is None else value for key, value in loaded.items()}


def _apply_override(raw: dict[str, Any], assignment: str, problems: list[str]) -> None:
    key, sep, text = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        problems.append(f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. data.table=robot_a")
        return
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a section")
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
    return f"{text}, got {value!r}"


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
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{_key_path(loc)}: unknown key{hint}; valid keys here: {', '.join(valid)}"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bounds = _field_bounds(loc) or {k: v for k, v in error.get("ctx", {}).items()}
        return f"{_key_path(loc)}: {_range_message(bounds, error['input'])}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{_key_path(loc) or 'config'}: {message}"
    return f"{_key_path(loc) or 'config'}: {message}, got {error['input']!r}"


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
        problems.extend(_describe(error) for error in _dedupe_union_errors(exc.errors()))
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    return LoadedConfig(config=config, source=source, base_dir=base_dir)
