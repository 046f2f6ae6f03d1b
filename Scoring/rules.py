"""The per-axis alarm rule that scoring reads from ``thresholds.json``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from Thresholding import MACHINE_CHANNEL, SmoothingConfig

from .errors import ScoringInputError

__all__ = ["MACHINE_CHANNEL", "AxisRule", "parse_thresholds"]


class AxisRule(BaseModel):
    """The part of one channel's thresholds entry that scoring uses.

    Other keys of the entry (``dt_seconds``, ``method``, ``policy``, ...) belong to the
    Thresholding stage and are ignored here. Entries written before the lower side existed
    have no ``MinC_low``/``MaxC_low``/``side``: they are upper-side rules, unsmoothed.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    min_c: float = Field(alias="MinC", allow_inf_nan=False, description="Alert residual level.")
    max_c: float = Field(alias="MaxC", allow_inf_nan=False, description="Error residual level.")
    min_c_low: float | None = Field(
        None, alias="MinC_low", allow_inf_nan=False, description="Alert level below (lower side)."
    )
    max_c_low: float | None = Field(
        None, alias="MaxC_low", allow_inf_nan=False, description="Error level below (lower side)."
    )
    t_long: int = Field(
        alias="T_long_steps", ge=1, description="Consecutive samples beyond MinC for an alert."
    )
    t_short: int = Field(
        alias="T_short_steps", ge=1, description="Consecutive samples beyond MaxC for an error."
    )
    side: str = Field("upper", pattern="^(upper|lower|both)$", description="Sides that alarm.")
    center: float = Field(0.0, allow_inf_nan=False, description="Typical residual (median).")
    scale: float = Field(1.0, gt=0, allow_inf_nan=False, description="Residual spread.")
    smoothing: SmoothingConfig = Field(
        default_factory=SmoothingConfig, description="Residual smoothing before the comparison."
    )

    @model_validator(mode="after")
    def _lower_side_complete(self) -> AxisRule:
        if self.side in ("lower", "both") and (self.min_c_low is None or self.max_c_low is None):
            raise ValueError(f"side {self.side!r} needs MinC_low and MaxC_low")
        return self

    @property
    def upper(self) -> bool:
        """Whether residuals above the thresholds alarm."""
        return self.side in ("upper", "both")

    @property
    def lower(self) -> bool:
        """Whether residuals below the lower thresholds alarm."""
        return self.side in ("lower", "both")

    @property
    def longest_run(self) -> int:
        """The longer of the two run-length rules, in samples."""
        return max(self.t_long, self.t_short)


def parse_thresholds(
    thresholds: Mapping[str, Mapping[str, Any]], axes: Iterable[str] | None = None
) -> dict[str, AxisRule]:
    """Validate the thresholds of ``axes`` (default: every axis in ``thresholds``).

    Returns
    -------
    dict
        Axis name → :class:`AxisRule`, in the order of ``axes``.

    Raises
    ------
    ScoringInputError
        Listing every problem at once, each with its key path (``thresholds.axis3.MaxC``).
    """
    if not isinstance(thresholds, Mapping):
        raise ScoringInputError(
            f"thresholds must be a mapping of axis name to its thresholds entry "
            f"(as in thresholds.json), got {type(thresholds).__name__}"
        )
    wanted = list(thresholds) if axes is None else list(axes)
    if not wanted:
        raise ScoringInputError(
            "thresholds has no axes; train a model version first or pass its thresholds.json"
        )
    problems: list[str] = []
    rules: dict[str, AxisRule] = {}
    for axis in wanted:
        if axis not in thresholds:
            problems.append(
                f"thresholds.{axis}: missing; the thresholds cover {sorted(map(str, thresholds))}"
            )
            continue
        entry = thresholds[axis]
        if not isinstance(entry, Mapping):
            problems.append(f"thresholds.{axis}: expected a mapping, got {type(entry).__name__}")
            continue
        try:
            rules[axis] = AxisRule.model_validate(dict(entry))
        except ValidationError as exc:
            problems.extend(
                f"thresholds.{axis}.{'.'.join(map(str, err['loc']))}: {err['msg']} "
                f"(got {err.get('input')!r})"
                for err in exc.errors()
            )
    if problems:
        raise ScoringInputError("invalid thresholds:\n  " + "\n  ".join(problems))
    return rules
