"""Where workers run: local processes now, containers next.

Each backend only starts, polls, stops and reads the logs of one worker; fan-out, reaping and
Ctrl-C are written once, in ``orchestrator.launch``.
"""

from __future__ import annotations

from orchestrator.backends._base import (
    Backend,
    WorkerHandle,
    WorkerSpec,
    WorkerState,
    state_from_exit,
)
from orchestrator.backends._local import LocalBackend

__all__ = [
    "Backend",
    "LocalBackend",
    "WorkerHandle",
    "WorkerSpec",
    "WorkerState",
    "state_from_exit",
]
