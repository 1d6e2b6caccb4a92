"""Workers as local processes: the trainer extra installed on this host, no containers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from orchestrator.backends._base import (
    LAST_LINES,
    WorkerHandle,
    WorkerSpec,
    WorkerState,
    exit_with_last_line,
    state_from_exit,
)
from orchestrator.backends._resources import gpu_ids
from orchestrator.worker_logs import LOG_NAME_ENV, WorkerLogs

__all__ = ["LocalBackend"]


class LocalBackend:
    """``python -m trainer.worker`` in a new process session per worker.

    The storage URL reaches the worker in its environment (readable only by this user, who
    already holds the password file); each process gets its own session, so a Ctrl-C in the
    terminal reaches the launcher alone and the launcher stops the workers in order.

    A worker sees the GPUs it is dealt and no others (``CUDA_VISIBLE_DEVICES``), as a container
    does: none unless ``gpus_per_worker`` asks, so that trials (``accelerator: auto``) do not all
    crowd onto the first GPU of the machine.

    Args:
        gpus_per_worker: GPUs for each worker, dealt round-robin over ``gpus``.
        gpus: The GPUs to deal, as ``CUDA_VISIBLE_DEVICES`` names them (``host_gpu_ids``).
    """

    name = "local"

    def __init__(self, gpus_per_worker: int = 0, gpus: Sequence[str] = ()) -> None:
        self.gpus_per_worker = gpus_per_worker
        self.gpus = list(gpus)
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
        if spec.threads is not None:
            command += ["--threads", str(spec.threads)]
        if spec.config_dir is not None:
            command += ["--config-dir", str(spec.config_dir)]
        log = self._logs.of(spec.log_folder, spec.worker_id)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**self.environment(spec), LOG_NAME_ENV: Path(log.name).name},
            start_new_session=True,
        )
        handle = WorkerHandle(id=str(process.pid), name=spec.name, backend=self.name)
        self._processes[handle.id] = process
        self._log_paths[handle.id] = Path(log.name)
        return handle

    def environment(self, spec: WorkerSpec) -> dict[str, str]:
        """This process's environment, with the worker's storage, threads and GPUs."""
        environment = {
            **os.environ,
            "HPO_STORAGE": spec.storage_url,
            "PYTHONUNBUFFERED": "1",
            "CUDA_VISIBLE_DEVICES": ",".join(self.gpus_of(spec.worker_id)),
        }
        if spec.threads is not None:
            environment["OMP_NUM_THREADS"] = str(spec.threads)
        return environment

    def gpus_of(self, worker_id: int) -> list[str]:
        """The GPUs worker ``worker_id`` sees; none is an empty list (it trains on the CPU)."""
        dealt = gpu_ids(worker_id, self.gpus_per_worker, len(self.gpus))
        return [self.gpus[int(index)] for index in dealt]

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
