"""Progress of a long fleet run: a bar on a terminal, a log line per tenth under cron."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

logger = logging.getLogger(__name__)


class Progress:
    """Counts finished assets; a tqdm bar when ``stream`` is a terminal, else log lines.

    Without a terminal (cron, a log file) it logs ``what: done/total`` each time another
    tenth of the assets is done, so a log shows a long run advancing without a line per asset.

    Args:
        total: assets to do.
        what: what is done to them, e.g. ``"training"``.
        stream: where a bar would go (default ``sys.stderr``).
    """

    def __init__(self, total: int, what: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.what = what
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._bar = None
        self._logged_tenths = 0

    def __enter__(self) -> Progress:
        if self._stream.isatty() and self.total > 1:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.what, unit="asset", file=self._stream)
        return self

    def update(self, count: int) -> None:
        """``count`` more assets are done."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        tenths = self.done * 10 // max(self.total, 1)
        if tenths > self._logged_tenths:
            self._logged_tenths = tenths
            logger.info("%s: %d of %d assets done", self.what, self.done, self.total)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
