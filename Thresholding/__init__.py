"""Thresholding stage: MinC/MaxC from positive residuals and run-length steps."""

from .runs import run_bounds, run_lengths

__all__ = ["run_bounds", "run_lengths"]
