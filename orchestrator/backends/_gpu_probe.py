"""Whether the Docker engine can give a container a GPU, asked of the engine itself.

``docker run --gpus`` needs the NVIDIA Container Toolkit's hook, not a registered ``nvidia``
runtime (NVIDIA's maintainers: nvidia-docker#1420), and CDI setups list no runtime at all; so
``docker info`` cannot say whether a GPU request will work. The engine decides only when a
container starts ("could not select device driver"), which for a launch would be after Postgres
had started. One throw-away container, started with the first worker's GPUs and removed, asks
before anything else starts.
"""

from __future__ import annotations

import contextlib

import docker
from docker.errors import APIError, NotFound
from docker.types import DeviceRequest

from orchestrator.engine import translated
from orchestrator.errors import ConfigError

__all__ = ["check_gpu_access"]

PROBE_LABEL = "hpo.gpu-probe"
NO_DRIVER = "could not select device driver"


def check_gpu_access(
    client: docker.DockerClient, image: str, gpus: list[str], labels: dict[str, str]
) -> None:
    """Start a container of ``image`` with GPUs ``gpus``, then remove it; refuse if it cannot.

    Args:
        client: The engine the workers will run on.
        image: The workers' image (it exists: checked before).
        gpus: The first worker's GPU indices (``gpu_ids``).
        labels: hpo's instance labels, so an interrupted probe is found and removed like a worker.

    Raises:
        ConfigError: The engine has no GPU driver for containers, or refused these GPUs.
    """
    request = DeviceRequest(device_ids=gpus, capabilities=[["gpu"]])
    with translated("creating a container to test GPU access"):
        probe = client.containers.create(
            image,
            entrypoint=["true"],  # the image's own entrypoint, if any, need not run
            labels={**labels, PROBE_LABEL: "1"},
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            device_requests=[request],
        )
    try:
        probe.start()  # the engine picks the GPU driver here; that `true` exits is no matter
    except APIError as e:
        raise ConfigError(_refusal(e, gpus)) from None
    finally:
        with contextlib.suppress(NotFound, APIError):
            probe.remove(force=True)


def _refusal(error: APIError, gpus: list[str]) -> str:
    reason = _reason(error)
    if NO_DRIVER in reason:
        return (
            f"`--gpus-per-worker`: the Docker engine cannot give a container a GPU ({reason}); "
            "install the NVIDIA Container Toolkit on the engine's host and restart dockerd."
        )
    return f"`--gpus-per-worker`: a container with GPU {','.join(gpus)} did not start: {reason}."


def _reason(error: APIError) -> str:
    return str(error.explanation or error).strip().rstrip(".")
