"""Workers as local processes: the trainer extra installed on this host, no containers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from orchestrator.backends._base import (
    LAST_LINES,
    WorkerHandle,
    WorkerSpec,
    WorkerState,
    exit_with_last_line,
    state_from_exit,
)
from orchestrator.worker_logs import WorkerLogs

__all__ = ["LocalBackend"]


class LocalBackend:
    """``python -m trainer.worker`` in a new process session per worker.

    The storage URL reaches the worker in its environment (readable only by this user, who
    already holds the password file); each process gets its own session, so a Ctrl-C in the
    terminal reaches the launcher alone and the launcher stops the workers in order.
    """

    name = "local"

    def __init__(self) -> None:
        self.machine = socket.gethostname()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs = WorkerLogs()
        self._log_paths: dict[str, Path] = {}
        self._stopped: set[str] = set()

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Start one worker process; its output goes to its log (it inherits the lock too)."""
        command = [sys.executable, "-m", "trainer.worker", "--study", spec.study]
        command += ["--worker-id", str(spec.worker_id), "--runs-dir", str(spec.runs_dir)]
        command += spec.launch_args
        environment = {**os.environ, "HPO_STORAGE": spec.storage_url, "PYTHONUNBUFFERED": "1"}
        if spec.threads is not None:
            command += ["--threads", str(spec.threads)]
            environment["OMP_NUM_THREADS"] = str(spec.threads)
        if spec.config_dir is not None:
            command += ["--config-dir", str(spec.config_dir)]
        log = self._logs.of(spec.log_folder, spec.worker_id)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
        handle = WorkerHandle(id=str(process.pid), name=spec.name, backend=self.name)
        self._processes[handle.id] = process
        self._log_paths[handle.id] = Path(log.name)
        return handle

    def poll(self, handle: WorkerHandle) -> WorkerState:
        """Running, or how it ended."""
        return state_from_exit(self._processes[handle.id].poll(), handle.id in self._stopped)

    def stop(self, handle: WorkerHandle, timeout_s: float = 10.0) -> None:
        """SIGTERM (the worker fails its current trial and leaves), then SIGKILL."""
        process = self._processes[handle.id]
        if process.poll() is not None:
            return
        self._stopped.add(handle.id)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def logs(self, handle: WorkerHandle, tail: int = 200) -> str:
        """The end of the worker's log file."""
        path = self._log_paths[handle.id]
        if not path.exists():
            return ""
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=tail))

    def exit_reason(self, handle: WorkerHandle) -> str:
        """The exit code and last line, or the signal that killed the process."""
        code = self._processes[handle.id].poll()
        if code is None:
            return "running"
        if code < 0:
            return f"killed by signal {-code}"
        return exit_with_last_line(code, self.logs(handle, tail=LAST_LINES))

    def wait(self, timeout_s: float) -> None:
        """A plain tick: a dead process is seen at the next poll."""
        time.sleep(timeout_s)

    def cleanup(self) -> None:
        """Let go of the log files; an ended process leaves only its log, which is kept."""
        self._logs.close()
