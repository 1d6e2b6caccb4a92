"""Where each worker's output is kept: ``<runs-dir>/<study>/worker-<k>.log``, one writer at a time.

Two launches of one study can run side by side on one machine (or share a runs folder over a
network file system), and each has a worker 0. Had both appended to ``worker-0.log``, their lines
would interleave, and the launcher that read the file's last line to say why its worker ended
could quote the other launch's worker. So a log is held under an exclusive ``flock`` for as long
as its writer runs: a worker process inherits the open file, and with it the lock, so the lock
lasts as long as the worker, even past its launcher. The first writer of worker k takes
``worker-<k>.log``; one that finds it held takes ``worker-<k>.2.log``, and so on. A later launch,
once the earlier has ended, appends to ``worker-<k>.log`` again. A launch keeps its logs open
until it ends, so a worker it restarts goes on in the same file.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path
from typing import BinaryIO

__all__ = ["LOG_NAME_ENV", "WorkerLogs", "open_worker_log", "worker_log_paths", "worker_of"]

_NAME = re.compile(r"^worker-(\d+)(?:\.(\d+))?\.log$")
# Tells a worker its log's name (an environment variable: a worker of an older image ignores it);
# it labels its trials with it, so `hpo status` can say which of two workers 0 runs a trial.
LOG_NAME_ENV = "HPO_WORKER_LOG"


def open_worker_log(folder: Path, worker_id: int) -> BinaryIO:
    """Worker ``worker_id``'s log, opened to append and locked while it stays open."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = 1
    while True:
        suffix = "" if copy == 1 else f".{copy}"
        log = (folder / f"worker-{worker_id}{suffix}.log").open("ab")
        try:
            fcntl.flock(log, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another launch's worker writes it now
            log.close()
            copy += 1
            continue
        return log


class WorkerLogs:
    """The log files of one launch's workers, each opened once and held until ``close``."""

    def __init__(self) -> None:
        self._open: dict[tuple[Path, int], BinaryIO] = {}

    def of(self, folder: Path, worker_id: int) -> BinaryIO:
        """Worker ``worker_id``'s log in ``folder``; a restarted worker gets its first one back."""
        key = (folder, worker_id)
        if key not in self._open:
            self._open[key] = open_worker_log(folder, worker_id)
        return self._open[key]

    def close(self) -> None:
        """Close every log (a worker process still running keeps its own, and its lock)."""
        for log in self._open.values():
            log.close()
        self._open.clear()


def worker_of(path: Path) -> tuple[int, int] | None:
    """``(k, copy)`` of a worker log's name (``worker-3.log`` is ``(3, 1)``), else ``None``."""
    found = _NAME.match(path.name)
    return None if found is None else (int(found[1]), int(found[2] or 1))


def worker_log_paths(folder: Path, worker: int | None = None) -> list[Path]:
    """The worker logs in ``folder`` (only worker ``worker``'s, if given), by worker and copy."""
    named = [(owner, path) for path in folder.glob("worker-*.log") if (owner := worker_of(path))]
    return [path for owner, path in sorted(named) if worker is None or owner[0] == worker]
