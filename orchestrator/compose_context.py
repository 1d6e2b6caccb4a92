"""Where a containerised orchestrator runs: inside a compose project, workers join that project.

The orchestrator service of ``compose.yaml`` starts sibling worker containers through the mounted
Docker socket. They must share its network (to reach ``postgres`` by name) and carry the project's
labels, so that ``docker ps --filter label=com.docker.compose.project=<project>`` finds them with
the rest of the project. Compose itself lists and removes only the containers it created; the
workers go when the orchestrator does (``docker compose down`` sends it SIGTERM, and it removes
them before it exits).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import DockerException

__all__ = ["PROJECT_LABEL", "ComposeContext", "compose_context"]

PROJECT_LABEL = "com.docker.compose.project"
WORKER_SERVICE = "worker"  # for filters; compose.yaml has no such service, compose never starts one
_INSIDE_A_CONTAINER = Path("/.dockerenv")
_COPIED_LABELS = (
    PROJECT_LABEL,
    "com.docker.compose.project.working_dir",
    "com.docker.compose.project.config_files",
)


@dataclass(frozen=True)
class ComposeContext:
    """The compose project this process runs in."""

    network: str
    labels: dict[str, str] = field(default_factory=dict)


def compose_context(
    client: docker.DockerClient, marker: Path = _INSIDE_A_CONTAINER
) -> ComposeContext | None:
    """The project's network and labels for worker containers; ``None`` outside compose.

    A container's hostname is its id, so the engine tells us our own labels and networks.
    """
    if not marker.exists():
        return None
    try:
        me = client.containers.get(socket.gethostname())
    except DockerException:
        return None
    if PROJECT_LABEL not in me.labels:
        return None
    networks = list(me.attrs["NetworkSettings"]["Networks"])
    if not networks:
        return None
    labels = {key: me.labels[key] for key in _COPIED_LABELS if key in me.labels}
    labels.update(
        {"com.docker.compose.service": WORKER_SERVICE, "com.docker.compose.oneoff": "False"}
    )
    return ComposeContext(network=networks[0], labels=labels)
