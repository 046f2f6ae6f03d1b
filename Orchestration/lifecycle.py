"""The registry's lifecycle commands: promote, rollback, pin, unpin and diff of two versions.

Each lineage (the registry root, or one asset's folder of a fleet) has its own aliases (see
:mod:`ModelRegistry.aliases`); these functions return a ``--json`` payload and the text.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd

from ModelRegistry import Aliases, LoadedVersion, ModelRegistry

from .config import LoadedConfig, UsageError

__all__ = ["alias_action", "diff_versions", "lineage"]

logger = logging.getLogger(__name__)

_THRESHOLD_KEYS = ("MinC", "MaxC", "MinC_low", "MaxC_low", "T_long_steps", "T_short_steps")
_METRIC_KEYS = ("R2", "MAE", "RMSE")


def lineage(loaded: LoadedConfig, asset: str | None, action: str) -> ModelRegistry:
    """The registry of the configured root, or of ``asset`` in a fleet.

    Raises:
        UsageError: a fleet (``data.asset_col`` set) without ``--asset``.
    """
    config = loaded.config.registry
    if asset is None:
        if loaded.config.data.asset_col is not None:
            raise UsageError(
                f"registry {action}: data.asset_col is set, so versions belong to assets; name "
                "one with --asset ID (python orchestrate.py registry list shows them)"
            )
        return ModelRegistry(loaded.path(config.root_dir), lock_timeout=config.lock_timeout_s)
    from .fleet import asset_registry

    return asset_registry(loaded, asset)


def format_aliases(aliases: Aliases) -> str:
    """``champion v3, previous v2, pinned: v1`` (``-`` where unset)."""
    pins = ", ".join(aliases.pins) or "-"
    return f"champion {aliases.champion or '-'}, previous {aliases.previous or '-'}, pinned: {pins}"


def alias_action(
    registry: ModelRegistry, action: str, version: str | None
) -> tuple[dict[str, Any], str]:
    """Run ``promote V``, ``rollback``, ``pin V`` or ``unpin V`` on one lineage."""
    if action == "promote":
        assert version is not None
        aliases = registry.promote(
            version, decision={"promoted": True, "policy": "manual", "reason": "promoted by hand"}
        )
    elif action == "rollback":
        aliases = registry.rollback()
    else:
        assert version is not None
        aliases = registry.pin(version, pinned=action == "pin")
    text = f"{registry.root_dir}: {format_aliases(aliases)}"
    return {"root": str(registry.root_dir), "aliases": aliases.to_dict()}, text


def _axis_table(found: LoadedVersion) -> dict[str, dict[str, Any]]:
    """Channel → family, thresholds and metrics of a version."""
    thresholds = found.read_json("thresholds.json")
    families = found.meta.get("families") or {}
    metrics: dict[str, dict[str, Any]] = {}
    if "metrics.csv" in found.artifacts:
        frame = pd.read_csv(io.BytesIO(found.read_bytes("metrics.csv")))
        if "axis" in frame.columns:
            metrics = frame.set_index("axis").to_dict(orient="index")
    table: dict[str, dict[str, Any]] = {}
    for channel, record in thresholds.items():
        row: dict[str, Any] = {"family": families.get(channel)}
        row.update({key: record.get(key) for key in _THRESHOLD_KEYS})
        row["events/day"] = record.get("expected_events_per_day")
        row.update({key: metrics.get(channel, {}).get(key) for key in _METRIC_KEYS})
        table[channel] = row
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def diff_versions(registry: ModelRegistry, first: str, second: str) -> tuple[dict[str, Any], str]:
    """Thresholds, families and metrics of two versions side by side; changes marked ``*``.

    Both versions are verified before they are read.
    """
    a, b = registry.load(first), registry.load(second)
    left, right = _axis_table(a), _axis_table(b)
    channels = list(dict.fromkeys([*left, *right]))
    keys = ["family", *_THRESHOLD_KEYS, "events/day", *_METRIC_KEYS]
    changes: dict[str, dict[str, list[Any]]] = {}
    lines = [f"{a.version} -> {b.version} ({registry.root_dir}); changed values marked *"]
    for channel in channels:
        old, new = left.get(channel, {}), right.get(channel, {})
        cells = []
        for key in keys:
            before, after = old.get(key), new.get(key)
            if before is None and after is None:
                continue
            if _cell(before) != _cell(after):
                changes.setdefault(channel, {})[key] = [before, after]
                cells.append(f"{key} {_cell(before)} -> {_cell(after)} *")
            else:
                cells.append(f"{key} {_cell(after)}")
        lines.append(f"  {channel}: " + "; ".join(cells))
    payload = {
        "versions": [a.version, b.version],
        "channels": {c: {"a": left.get(c), "b": right.get(c)} for c in channels},
        "changes": changes,
    }
    return payload, "\n".join(lines)
