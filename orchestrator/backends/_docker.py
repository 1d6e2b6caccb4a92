"""Workers as containers from the one trainer image, hardened, through the Docker SDK.

Each worker container knows only its study name and a storage URL, which it reads from a file
mounted read-only (never an environment variable, label or argument: those show in
``docker inspect``). It runs as a non-root user with every capability dropped, no new
privileges, a read-only root with a tmpfs for /tmp, an init process, pids and memory limits
(memory-swap equal to memory, so running out shows as OOMKilled), its CPU share, and one
writable folder: the study's run folder on the host.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from pathlib import Path
from typing import BinaryIO

import docker
from docker.errors import NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest
from trainer.wandb_runs import api_key, netrc_machine

from orchestrator.backends._base import (
    LAST_LINES,
    WorkerHandle,
    WorkerSpec,
    WorkerState,
    exit_with_last_line,
    state_from_exit,
)
from orchestrator.backends._docker_events import DeathWatch
from orchestrator.backends._resources import WorkerResources, gpu_ids
from orchestrator.engine import translated
from orchestrator.worker_logs import LOG_NAME_ENV, WorkerLogs

__all__ = ["DockerBackend"]

CONTAINER_USER = "10001:10001"  # the image's `hpo` user
RUNS_MOUNT = "/runs"
SECRET_MOUNT = "/run/secrets/hpo-storage"
CONFIG_MOUNT = "/opt/hpo/user-config"
NETRC_MOUNT = "/run/secrets/hpo-netrc"
# W&B settings that hold no secret (WANDB_ERROR_REPORTING=false: no crash reports to W&B's Sentry)
PASSED_THROUGH = (
    "WANDB_BASE_URL",
    "WANDB_MODE",
    "WANDB_INIT_TIMEOUT",
    "WANDB_FINISH_TIMEOUT",
    "WANDB_ERROR_REPORTING",
)
LAUNCH_LABEL = "hpo.launch"


class DockerBackend:
    """``python -m trainer.worker`` in one container per worker, labelled with the launch id.

    ``machine`` is the engine's host name, not this process's: under ``docker compose`` the
    launcher is a container, and with ``DOCKER_HOST`` the engine is another machine.
    """

    name = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        image: str,
        network: str,
        launch_id: str,
        labels: dict[str, str],
        resources: WorkerResources,
        secrets_dir: Path,
        gpus_available: int = 0,
        machine: str | None = None,
    ) -> None:
        self.client = client
        self.machine = machine or str(client.info()["Name"])
        self.image = image
        self.network = network
        self.labels = {**labels, LAUNCH_LABEL: launch_id}
        self.resources = resources
        self.secrets_dir = secrets_dir
        self.gpus_available = gpus_available
        self._stopped: set[str] = set()
        self._log_threads: list[threading.Thread] = []
        self._logs = WorkerLogs()
        self._deaths: DeathWatch | None = None  # opened before the first container starts
        self._opening_deaths = threading.Lock()  # workers start side by side

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        """Create and start one hardened worker container; its output streams to its log file."""
        run_dir = spec.runs_dir / spec.study
        run_dir.mkdir(parents=True, exist_ok=True)
        user = _container_user(run_dir)
        log = self._logs.of(spec.log_folder, spec.worker_id)
        command, volumes, environment = self._worker_inputs(spec, run_dir, user)
        environment[LOG_NAME_ENV] = Path(log.name).name
        labels = {**self.labels, "hpo.study": spec.study, "hpo.worker": str(spec.worker_id)}
        gpus = gpu_ids(spec.worker_id, self.resources.gpus, self.gpus_available)
        devices = [DeviceRequest(device_ids=gpus, capabilities=[["gpu"]])] if gpus else []
        with translated(f"starting worker container {spec.name}"):
            with self._opening_deaths:
                if self._deaths is None:
                    self._deaths = DeathWatch(self.client, self._launch_label)
            self._remove_ended(spec.name)  # this launch's earlier run of the worker: a restart
            container = self.client.containers.run(
                self.image,
                command,
                name=spec.name,
                detach=True,
                labels=labels,
                network=self.network,
                user=user,
                environment=environment,
                volumes=volumes,
                read_only=True,
                tmpfs={"/tmp": f"rw,noexec,nosuid,size={self.resources.tmp_size}"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,
                pids_limit=self.resources.pids,
                mem_limit=self.resources.memory,
                memswap_limit=self.resources.memory,
                nano_cpus=int(self.resources.cpus * 1e9),
                device_requests=devices,
            )
        self._follow_logs(container, log)
        return WorkerHandle(id=container.id or spec.name, name=spec.name, backend=self.name)

    def poll(self, handle: WorkerHandle) -> WorkerState:
        """Ask the engine afresh; a container that is gone counts as failed."""
        try:
            container = self.client.containers.get(handle.id)
        except NotFound:
            return WorkerState.FAILED
        state = container.attrs["State"]
        if state.get("Status") in ("created", "running", "restarting"):
            return WorkerState.PENDING if state.get("Status") == "created" else WorkerState.RUNNING
        return state_from_exit(int(state.get("ExitCode", 1)), handle.id in self._stopped)

    def stop(self, handle: WorkerHandle, timeout_s: float = 10.0) -> None:
        """SIGTERM (the worker fails its current trial and leaves), then SIGKILL."""
        self._stopped.add(handle.id)
        with translated(f"stopping {handle.name}"), contextlib.suppress(NotFound):
            self.client.containers.get(handle.id).stop(timeout=int(timeout_s))

    def logs(self, handle: WorkerHandle, tail: int = 200) -> str:
        """The container's last ``tail`` lines."""
        try:
            return self.client.containers.get(handle.id).logs(tail=tail).decode(errors="replace")
        except NotFound:
            return ""

    def exit_reason(self, handle: WorkerHandle) -> str:
        """Why a finished container ended: its exit code and last line, or "OOM-killed"."""
        try:
            state = self.client.containers.get(handle.id).attrs["State"]
        except NotFound:
            return "gone"
        code = int(state.get("ExitCode", 1))
        if state.get("OOMKilled"):
            return f"exit {code}, OOM-killed"
        return exit_with_last_line(code, self.logs(handle, tail=LAST_LINES))

    def wait(self, timeout_s: float) -> None:
        """Until the engine reports a death of this launch's containers, or ``timeout_s``."""
        if self._deaths is None:
            time.sleep(timeout_s)
        else:
            self._deaths.wait(timeout_s)

    def cleanup(self) -> None:
        """Remove every container of this launch (by its launch label alone), and its secrets."""
        selector: dict[str, str | list[str] | bool] = {"label": self._launch_label}
        with translated("removing worker containers"):
            for _ in range(2):  # a second pass catches containers created during the first
                for container in self.client.containers.list(
                    all=True, ignore_removed=True, filters=selector
                ):
                    with contextlib.suppress(NotFound):
                        container.remove(force=True)
        if self._deaths is not None:
            self._deaths.close()
            self._deaths = None
        for thread in self._log_threads:
            thread.join(timeout=5)
        self._logs.close()
        for secret in self.secrets_dir.glob("*"):
            secret.unlink(missing_ok=True)

    @property
    def _launch_label(self) -> str:
        """``hpo.launch=<id>``: the engine filter for this launch's containers alone."""
        return f"{LAUNCH_LABEL}={self.labels[LAUNCH_LABEL]}"

    def _remove_ended(self, name: str) -> None:
        """Remove this launch's ended container called ``name``, so the name can be reused."""
        selector: dict[str, str | list[str] | bool] = {
            "label": self._launch_label,
            "name": f"^/?{name}$",
            "status": ["exited", "dead"],
        }
        for container in self.client.containers.list(
            all=True, ignore_removed=True, filters=selector
        ):
            with contextlib.suppress(NotFound):
                container.remove(force=True)

    def _worker_inputs(
        self, spec: WorkerSpec, run_dir: Path, user: str
    ) -> tuple[list[str], dict[str, dict[str, str]], dict[str, str]]:
        """A worker's command, mounts and environment. Secrets go in read-only files only."""
        k = spec.worker_id
        storage = self._write_secret(f"storage-w{k}", spec.storage_url, user)
        command = ["python", "-m", "trainer.worker", "--study", spec.study]
        command += ["--worker-id", str(k), "--storage-file", SECRET_MOUNT]
        command += ["--runs-dir", RUNS_MOUNT]
        command += spec.launch_args
        if spec.threads is not None:
            command += ["--threads", str(spec.threads)]
        volumes = {
            str(run_dir): {"bind": f"{RUNS_MOUNT}/{spec.study}", "mode": "rw"},
            str(storage): {"bind": SECRET_MOUNT, "mode": "ro"},
        }
        if spec.config_dir is not None:
            command += ["--config-dir", CONFIG_MOUNT]
            volumes[str(spec.config_dir.resolve())] = {"bind": CONFIG_MOUNT, "mode": "ro"}
        environment = {
            "OMP_NUM_THREADS": str(spec.threads or 1),
            "HOME": "/tmp",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            **self._image_identity,
            **{name: os.environ[name] for name in PASSED_THROUGH if name in os.environ},
        }
        key = api_key()
        if key:  # W&B reads a netrc named by NETRC: the key never shows in `docker inspect`
            netrc = self._write_secret(f"netrc-w{k}", _netrc(key), user)
            volumes[str(netrc)] = {"bind": NETRC_MOUNT, "mode": "ro"}
            environment["NETRC"] = NETRC_MOUNT
        return command, volumes, environment

    @functools.cached_property
    def _image_identity(self) -> dict[str, str]:
        """What the workers' trial runs record of their image: name, id and source revision."""
        with translated(f"reading image {self.image}"):
            image = self.client.images.get(self.image)
        revision = (image.labels or {}).get("org.opencontainers.image.revision", "unknown")
        return {"HPO_IMAGE": f"{self.image}@{image.short_id}", "HPO_REVISION": revision}

    def _write_secret(self, name: str, text: str, user: str) -> Path:
        """``text`` in a file only the worker's user can read, in a folder only we can."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.secrets_dir / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(descriptor, "w") as f:
            f.write(text)
        uid, gid = (int(part) for part in user.split(":"))
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        return path

    def _follow_logs(self, container: Container, log: BinaryIO) -> None:
        def copy() -> None:
            # ValueError: the launch ended and closed the log while the engine still sent lines.
            with contextlib.suppress(ValueError):
                for chunk in container.logs(stream=True, follow=True):
                    log.write(chunk)
                    log.flush()

        thread = threading.Thread(target=copy, name=f"logs-{container.name}", daemon=True)
        thread.start()
        self._log_threads.append(thread)


def _container_user(run_dir: Path) -> str:
    """Run as the host user (files in the run folder stay theirs); as root, as the image's user.

    A worker never runs as root: when hpo itself runs as root, the run folder is handed to the
    image's unprivileged user instead.
    """
    if os.geteuid() != 0:
        return f"{os.geteuid()}:{os.getegid()}"
    uid, gid = (int(part) for part in CONTAINER_USER.split(":"))
    os.chown(run_dir, uid, gid)
    return CONTAINER_USER


def _netrc(key: str) -> str:
    """A netrc entry for the W&B server (``WANDB_BASE_URL``'s, else W&B's cloud)."""
    return f"machine {netrc_machine()}\n  login user\n  password {key}\n"
