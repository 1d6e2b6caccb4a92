"""Lightning loggers for many short trials: the same files, written less often.

Lightning's logger connector calls ``logger.save()`` after every ``log_metrics``, so
``CSVLogger``'s ``flush_logs_every_n_steps`` never takes effect: each epoch's rows reopen
metrics.csv, and each new column rewrites it, about a millisecond a time, ~2-3 % of a 20-epoch
digits trial (bench/train.py). Like TensorBoard's ``flush_secs``, writes here are by the clock.
"""

from __future__ import annotations

import math
import time
from typing import Any

from lightning.pytorch.loggers import CSVLogger

__all__ = ["BufferedCSVLogger"]


class BufferedCSVLogger(CSVLogger):
    """``CSVLogger`` that writes metrics.csv at most every ``flush_every_s``, and at the end.

    Lightning finalizes its loggers when a fit or test ends, failed or not, and every row is
    written then; only a process killed outright (SIGKILL, OOM) loses up to ``flush_every_s``
    of rows.

    Args:
        flush_every_s: Least seconds between two writes while a stage runs; 0 writes each time.
        **kwargs: As ``CSVLogger``'s (``save_dir``, ``name``, ``version`` ...).
    """

    def __init__(self, *args: Any, flush_every_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if flush_every_s < 0:
            raise ValueError(f"`logger.csv.flush_every_s` must be >= 0, got {flush_every_s}.")
        self.flush_every_s = flush_every_s
        self._last_write = time.monotonic()

    def save(self) -> None:
        """Write the rows held, unless the last write was less than ``flush_every_s`` ago."""
        now = time.monotonic()
        if now - self._last_write < self.flush_every_s:
            return
        self._last_write = now
        super().save()

    def finalize(self, status: str) -> None:
        """Write every row held, whatever the clock says."""
        self._last_write = -math.inf
        super().finalize(status)
