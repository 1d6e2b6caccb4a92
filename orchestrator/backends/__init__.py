"""Where workers run: local processes, or one container each.

Each backend only starts, polls, stops and reads the logs of one worker; fan-out, reaping and
Ctrl-C are written once, in ``orchestrator.launch``.
"""

from __future__ import annotations

from orchestrator.backends._base import (
    STOP_TIMEOUT_S,
    Backend,
    WorkerHandle,
    WorkerSpec,
    WorkerState,
    exit_with_last_line,
    state_from_exit,
)
from orchestrator.backends._docker import LAUNCH_LABEL, DockerBackend
from orchestrator.backends._gpu_probe import check_gpu_access
from orchestrator.backends._local import LocalBackend
from orchestrator.backends._local_workers import find_local_workers, terminate
from orchestrator.backends._resources import (
    WorkerResources,
    check_capacity,
    check_gpus,
    gpu_ids,
    host_gpu_ids,
    visible_gpus,
)

__all__ = [
    "LAUNCH_LABEL",
    "STOP_TIMEOUT_S",
    "Backend",
    "DockerBackend",
    "LocalBackend",
    "WorkerHandle",
    "WorkerResources",
    "WorkerSpec",
    "WorkerState",
    "check_capacity",
    "check_gpu_access",
    "check_gpus",
    "exit_with_last_line",
    "find_local_workers",
    "gpu_ids",
    "host_gpu_ids",
    "state_from_exit",
    "terminate",
    "visible_gpus",
]
