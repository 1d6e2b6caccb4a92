"""The one door to the Docker engine: connect, and turn Docker's errors into ``BackendError``.

Docker's exceptions are translated here and nowhere else, so every caller sees one error type
whose message says what failed and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker
from docker.errors import DockerException

from orchestrator.errors import BackendError

__all__ = ["connect", "translated"]

START_HINT = (
    "start it (`sudo dockerd &`, or `sudo systemctl start docker`); on a Debian machine without "
    "Docker, `sudo scripts/provision.sh` installs and starts one"
)


def connect() -> docker.DockerClient:
    """A client for the engine that ``DOCKER_HOST`` (or the default socket) names.

    Raises:
        BackendError: The engine does not answer.
    """
    try:
        client = docker.from_env(timeout=120)
    except DockerException as e:
        raise BackendError(f"the Docker engine is not reachable: {START_HINT}.") from e
    try:
        client.ping()
    except DockerException as e:
        client.close()
        raise BackendError(f"the Docker engine is not reachable: {START_HINT}.") from e
    return client


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run the block; a Docker error becomes ``BackendError("<action>: <engine's reason>")``."""
    try:
        yield
    except DockerException as e:
        reason = getattr(e, "explanation", None) or str(e)
        raise BackendError(f"{action}: {reason}") from e
