"""What the engine has, or can pull: the first question before any build."""

from __future__ import annotations

import docker
from docker.errors import DockerException, ImageNotFound

from orchestrator.images._build import BuildLog

__all__ = ["image_exists", "image_labels", "pull"]


def image_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether the engine holds an image called ``name``."""
    return image_labels(client, name) is not None


def image_labels(client: docker.DockerClient, name: str) -> dict[str, str] | None:
    """The labels of the image ``name`` (its own and its base's), or None if there is none."""
    try:
        return dict(client.images.get(name).labels or {})
    except ImageNotFound:
        return None


def pull(client: docker.DockerClient, name: str, log: BuildLog) -> str | None:
    """Pull ``name``; return ``None`` on success, else the registry's reason (for the message)."""
    log(f"pulling {name}")
    try:
        client.images.pull(name)
    except DockerException as e:
        return str(getattr(e, "explanation", None) or e)
    return None
