"""The backend contract: three verbs and logs, and one mapping from exit codes to states."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = [
    "LAST_LINES",
    "STOP_TIMEOUT_S",
    "Backend",
    "WorkerHandle",
    "WorkerSpec",
    "WorkerState",
    "exit_with_last_line",
    "state_from_exit",
]

# How long a worker has, after SIGTERM, to fail its trial in the database (riding out a short
# outage) and close its W&B run before it is killed: on Ctrl-C of its launch and on `hpo stop`.
STOP_TIMEOUT_S = 30
LAST_LINE_CHARS = 160
LAST_LINES = 20  # read from the end of a worker's log to find its last non-blank line
# What trainer.worker.LOG_FORMAT puts before each message: "<date> <time> worker-<k> <LEVEL> ".
_WORKER_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ worker-\d+ [A-Z]+ ")


class WorkerState(enum.StrEnum):
    """Where a worker is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        """Whether the worker has ended, one way or another."""
        return self in (WorkerState.SUCCEEDED, WorkerState.FAILED, WorkerState.STOPPED)


def state_from_exit(code: int | None, stopped: bool) -> WorkerState:
    """A worker's state from its exit code (``None``: still running) and whether hpo stopped it."""
    if code is None:
        return WorkerState.RUNNING
    if stopped:
        return WorkerState.STOPPED
    return WorkerState.SUCCEEDED if code == 0 else WorkerState.FAILED


def exit_with_last_line(code: int, output: str) -> str:
    """The exit code and the worker's last line: the summary and the trial say why, no log needed.

    A worker that exits by itself (1-127) last printed why: a traceback's final line, an
    "error: ..." line, or the init's ``exec python failed`` for an image without Python. After a
    signal (128 and up) or exit 0, its last line is an unrelated log line and is left out.
    """
    reason = f"exit {code}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not 0 < code < 128 or not lines:
        return reason
    last = _WORKER_LOG_PREFIX.sub("", lines[-1], count=1)
    if len(last) > LAST_LINE_CHARS:
        last = last[: LAST_LINE_CHARS - 3] + "..."
    return f"{reason}: {last}"


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker is told. The storage URL holds a password: never in ``repr`` or logs."""

    study: str
    worker_id: int
    storage_url: str = field(repr=False)
    runs_dir: Path
    threads: int | None = None
    config_dir: Path | None = None  # a user's Hydra config folder, searched after the packaged one
    launch: str | None = None  # the launch's id: labels the worker's trials
    wait_ready: bool = False  # wait until the study is ready for ``launch`` (first starts only)
    machine: str | None = None  # where it runs (``Backend.machine``): labels its trials too

    @property
    def name(self) -> str:
        """``hpo-<study>-w<k>``: the worker's process or container name."""
        return f"hpo-{self.study}-w{self.worker_id}"

    @property
    def launch_args(self) -> list[str]:
        """``--launch ID --machine NAME``, and ``--wait-ready`` for a worker that must wait."""
        args = ["--machine", self.machine] if self.machine is not None else []
        if self.launch is None:
            return args
        return [*args, "--launch", self.launch, *(["--wait-ready"] if self.wait_ready else [])]

    @property
    def log_folder(self) -> Path:
        """Where the worker's log goes (``orchestrator.worker_logs`` names the file)."""
        return self.runs_dir / self.study


@dataclass(frozen=True)
class WorkerHandle:
    """A started worker, as its backend knows it."""

    id: str
    name: str
    backend: str

    def __repr__(self) -> str:
        return f"<WorkerHandle {self.backend}:{self.id[:12]}>"


class Backend(Protocol):
    """Runs workers somewhere: local processes, containers, pods."""

    name: str
    machine: str  # where the workers run, as its users name it (a host name): labels their trials

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Start one worker; it runs ``python -m trainer.worker`` for ``spec.study``."""
        ...

    def poll(self, handle: WorkerHandle) -> WorkerState:
        """The worker's state now (asked afresh each time)."""
        ...

    def stop(self, handle: WorkerHandle, timeout_s: float = 10.0) -> None:
        """SIGTERM, then kill after ``timeout_s``; a worker already gone is not an error."""
        ...

    def logs(self, handle: WorkerHandle, tail: int = 200) -> str:
        """The last ``tail`` lines the worker printed."""
        ...

    def wait(self, timeout_s: float) -> None:
        """Block until a worker may have ended, or ``timeout_s`` passed (the launcher's tick)."""
        ...

    def exit_reason(self, handle: WorkerHandle) -> str:
        """Why an ended worker ended, for trial attrs and the summary: "exit 137, OOM-killed"."""
        ...

    def cleanup(self) -> None:
        """Remove whatever this backend's workers left behind (containers, secret files)."""
        ...
