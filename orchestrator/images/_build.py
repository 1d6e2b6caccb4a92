"""Build one image through the Docker SDK, streaming the engine's output to a callback."""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

import docker

from orchestrator.engine import translated
from orchestrator.errors import BackendError

__all__ = ["BuildLog", "build_image", "run_streamed"]

BuildLog = Callable[[str], None]
"""Receives each line of progress (build steps, pip, debootstrap) as it happens."""

_TAIL_LINES = 15


def build_image(
    client: docker.DockerClient,
    *,
    context: Path,
    dockerfile: str,
    tag: str,
    buildargs: Mapping[str, str],
    log: BuildLog,
    network_mode: str | None = None,
    nocache: bool = False,
) -> str:
    """Build ``tag`` from ``context`` with the classic builder (the SDK's) and return its id.

    Args:
        client: Engine client.
        context: Build context folder; its ``.dockerignore`` applies.
        dockerfile: Dockerfile path relative to ``context``.
        tag: ``name:tag`` to give the image.
        buildargs: ``ARG`` values.
        log: Receives every line the build prints.
        network_mode: ``"none"`` for a build that must not reach any network.
        nocache: Build every layer again.

    Raises:
        BackendError: A step failed; the message holds the last lines of output.
    """
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    image_id = ""
    with translated(f"building {tag}"):
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(buildargs),
            network_mode=network_mode,
            nocache=nocache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail.append(line)
                    log(line)
            if "error" in chunk:
                output = "\n".join(tail)
                raise BackendError(f"building {tag} failed: {chunk['error'].strip()}\n{output}")
            image_id = chunk.get("aux", {}).get("ID", image_id)
    if not image_id:
        raise BackendError(f"building {tag} ended without an image id")
    return image_id


def run_streamed(command: list[str], log: BuildLog) -> tuple[int, str]:
    """Run a host command (pip, debootstrap, tar), passing each output line to ``log``.

    Returns:
        The exit code and the last non-empty line, for an error message.
    """
    last = ""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip():
                last = line.rstrip()
                log(last)
        return process.wait(), last
