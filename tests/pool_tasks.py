"""Tasks for the local pool tests: module-level functions a pool worker imports by name."""

from __future__ import annotations

import gc
import os
from typing import Any


def freeze_counts(shared: Any, batch: list[Any]) -> list[int]:
    """Per item, the objects the worker's garbage collector leaves alone (``gc.freeze``)."""
    return [gc.get_freeze_count() for _ in batch]


def numpy_dispatch_seen(shared: Any, batch: list[Any]) -> list[tuple[str | None, bool | None]]:
    """Per item, the worker's ``NPY_DISABLE_CPU_FEATURES`` and whether its NumPy dispatches
    to AVX-512 (``X86_V4``, NumPy 2.4 and later)."""
    from numpy._core import _multiarray_umath

    features = _multiarray_umath.__cpu_features__
    return [(os.environ.get("NPY_DISABLE_CPU_FEATURES"), features.get("X86_V4")) for _ in batch]


def preloaded(shared: Any, batch: list[Any]) -> list[bool]:
    """Per item, whether the worker has ``Orchestration.fleet`` without importing it itself
    (its fork server preloaded it)."""
    import sys

    return ["Orchestration.fleet" in sys.modules for _ in batch]


def worker_pid(shared: Any, batch: list[Any]) -> list[int]:
    """Per item, the process that ran it."""
    return [os.getpid() for _ in batch]


def die(shared: Any, batch: list[Any]) -> list[int]:
    """Kill the worker (as an out-of-memory kill would): its pool breaks."""
    os._exit(1)
