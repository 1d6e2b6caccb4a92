"""A study's local worker processes on this machine, for ``hpo stop`` from another terminal.

Local workers are children of the ``hpo launch`` that started them. They are found under /proc by
the command line ``LocalBackend`` gives them (``-m trainer.worker --study NAME``) and by the hpo
instance in their environment, so a test instance never stops a user's study. SIGTERM makes a
worker fail its trial and leave, as Ctrl-C in its launch's terminal would; the launch then ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from pathlib import Path

from orchestrator.settings import DEFAULT_INSTANCE

__all__ = ["find_local_workers", "terminate"]

PROC = Path("/proc")  # Linux only: elsewhere nothing is found, and containers are the way


def find_local_workers(study: str, instance: str, proc: Path = PROC) -> list[int]:
    """The pids of ``study``'s worker processes that belong to ``instance`` (readable ones only)."""
    found: list[int] = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if not _is_worker_of(_strings(entry / "cmdline"), study):
                continue
            environment = dict(item.partition("=")[::2] for item in _strings(entry / "environ"))
        except OSError:  # it ended meanwhile, or another user's
            continue
        if environment.get("HPO_INSTANCE", DEFAULT_INSTANCE) == instance:
            found.append(int(entry.name))
    return sorted(found)


def terminate(pids: list[int], timeout_s: float) -> int:
    """SIGTERM each, then SIGKILL those still running after ``timeout_s``; how many there were."""
    signalled: list[int] = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
    deadline = time.monotonic() + timeout_s
    while any(_running(pid) for pid in signalled) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in filter(_running, signalled):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(signalled)


def _strings(path: Path) -> list[str]:
    return path.read_bytes().decode(errors="replace").split("\0")


def _is_worker_of(argv: list[str], study: str) -> bool:
    pairs = set(itertools.pairwise(argv))
    return ("-m", "trainer.worker") in pairs and ("--study", study) in pairs


def _running(pid: int, proc: Path = PROC) -> bool:
    """Not ended: a worker that has exited stays a zombie until its launch reaps it."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
