"""Tasks for the local pool tests: module-level functions a pool worker imports by name."""

from __future__ import annotations

import gc
from typing import Any


def freeze_counts(shared: Any, batch: list[Any]) -> list[int]:
    """Per item, the objects the worker's garbage collector leaves alone (``gc.freeze``)."""
    return [gc.get_freeze_count() for _ in batch]
