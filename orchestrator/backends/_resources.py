"""A worker container's share of the machine, and the checks made before any container starts.

A launch asking for more memory, CPUs or GPUs than the engine has would start some workers and
fail on the others, or start all of them and thrash; both are refused up front, in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import DockerException
from docker.utils import parse_bytes

from orchestrator.errors import ConfigError

__all__ = [
    "NVIDIA_GPUS",
    "WorkerResources",
    "check_capacity",
    "check_gpus",
    "gpu_ids",
    "host_gpu_ids",
    "visible_gpus",
]

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU once the driver is loaded
_GIB = 2**30


@dataclass(frozen=True)
class WorkerResources:
    """One worker's share: CPUs (nano_cpus), memory (swap included), pids, /tmp, GPUs.

    Raises:
        ConfigError: A size Docker would not understand, or a share below its minimum.
    """

    cpus: float
    memory: str = "2g"
    pids: int = 512
    tmp_size: str = "512m"
    gpus: int = 0

    def __post_init__(self) -> None:
        if self.cpus < 0.01:
            raise ConfigError(f"`--cpus-per-worker` must be >= 0.01, got {self.cpus}.")
        if self.memory_bytes < 6 * 2**20:
            raise ConfigError(
                f"`--memory-per-worker` must be >= 6m (Docker's minimum), got {self.memory!r}."
            )
        if self.gpus < 0:
            raise ConfigError(f"`--gpus-per-worker` must be >= 0, got {self.gpus}.")

    @property
    def memory_bytes(self) -> int:
        """The memory limit in bytes, parsed as Docker does (``512m``, ``2g``)."""
        try:
            return int(parse_bytes(self.memory))
        except DockerException:
            raise ConfigError(
                f"`--memory-per-worker` {self.memory!r} is not a size; use e.g. 512m or 2g."
            ) from None


def check_capacity(
    engine_info: Mapping[str, Any], resources: WorkerResources, workers: int, gpus: int
) -> None:
    """Refuse a launch whose workers together need more than the engine has.

    Args:
        engine_info: ``docker info`` (``MemTotal``, ``NCPU``).
        resources: Each worker's share.
        workers: How many workers share the machine.
        gpus: GPUs on this machine (``visible_gpus``).

    Raises:
        ConfigError: Not enough memory, CPUs or GPUs (whether containers can reach the GPUs is
            ``check_gpu_access``'s to say).
    """
    total = int(engine_info.get("MemTotal", 0))
    wanted = resources.memory_bytes * workers
    if total and wanted > total:
        raise ConfigError(
            f"{workers} workers x {resources.memory} = {wanted / _GIB:.1f} GiB is more memory than "
            f"the Docker engine has ({total / _GIB:.1f} GiB); lower `--memory-per-worker` or "
            "`--workers`."
        )
    cores = int(engine_info.get("NCPU", 0))
    if cores and resources.cpus > cores:
        raise ConfigError(
            f"`--cpus-per-worker` {resources.cpus:g} is more than the engine's {cores} CPUs."
        )
    check_gpus(resources.gpus, gpus)


def check_gpus(per_worker: int, gpus: int, why_none: str | None = None) -> None:
    """Refuse ``per_worker`` GPUs for each worker where there are none, or fewer than that.

    Args:
        per_worker: GPUs asked for each worker.
        gpus: GPUs there are to deal.
        why_none: What says there are none, for the message; by default the driver's folder.

    Raises:
        ConfigError: GPUs were asked for and are not there.
    """
    if per_worker and gpus == 0:
        raise ConfigError(
            f"`--gpus-per-worker` {per_worker}: no NVIDIA GPU on this machine "
            f"({why_none or f'{NVIDIA_GPUS} is missing or empty'})."
        )
    if per_worker > gpus:
        raise ConfigError(f"`--gpus-per-worker` {per_worker} is more than the {gpus} GPU(s) here.")


def visible_gpus(root: Path = NVIDIA_GPUS) -> int:
    """GPUs the NVIDIA driver sees on this host (0 without the driver)."""
    return sum(1 for _ in root.iterdir()) if root.is_dir() else 0


def gpu_ids(worker: int, per_worker: int, available: int) -> list[str]:
    """The GPU indices of ``worker``: round-robin, so N workers spread over the GPUs evenly.

    With fewer GPUs than ``workers x per_worker`` some GPUs are shared, which is the user's call
    (small models share a GPU well).
    """
    if per_worker == 0 or available == 0:
        return []
    first = worker * per_worker
    return [str((first + offset) % available) for offset in range(per_worker)]


def host_gpu_ids(environ: Mapping[str, str], root: Path = NVIDIA_GPUS) -> list[str]:
    """The GPUs this process may deal to local workers, as ``CUDA_VISIBLE_DEVICES`` names them.

    A scheduler's share (SLURM sets ``CUDA_VISIBLE_DEVICES=2,3``) where the launcher has one: a
    worker told ``0`` would otherwise train on a GPU given to someone else. Else every GPU the
    driver sees.
    """
    shared = environ.get("CUDA_VISIBLE_DEVICES")
    if shared is not None:
        return [gpu.strip() for gpu in shared.split(",") if gpu.strip()]
    return [str(index) for index in range(visible_gpus(root))]
