"""The Postgres image: the official one where it can be pulled, else one built offline."""

from __future__ import annotations

from pathlib import Path

import docker

from orchestrator.errors import BackendError
from orchestrator.images._base import ensure_base_image
from orchestrator.images._build import BuildLog, build_image
from orchestrator.images._engine_images import image_exists, pull
from orchestrator.settings import OFFLINE_POSTGRES_IMAGE, PYTHON_BASE_IMAGE

__all__ = ["ensure_postgres_image"]


def ensure_postgres_image(
    client: docker.DockerClient, wanted: str, root: Path | None, log: BuildLog
) -> str:
    """Return a Postgres image to run: ``wanted`` if present or pullable, else the offline one.

    The offline image (``postgres/Dockerfile``) is built from the source tree ``root`` on the same
    base as the trainer image, and kept, so this runs once per machine.

    Raises:
        BackendError: ``wanted`` cannot be pulled and the offline image cannot be built.
    """
    for name in (wanted, OFFLINE_POSTGRES_IMAGE):
        if image_exists(client, name):
            return name
    reason = pull(client, wanted, log)
    if reason is None:
        return wanted
    if root is None:
        raise BackendError(
            f"cannot pull `{wanted}` ({reason}), and building `{OFFLINE_POSTGRES_IMAGE}` needs the "
            "hpo source tree: run from a clone of hpo, or pass `--image` with a local image."
        )
    log(f"{wanted} cannot be pulled; building {OFFLINE_POSTGRES_IMAGE} from Debian's postgresql")
    base = ensure_base_image(client, PYTHON_BASE_IMAGE, log)
    build_image(
        client,
        context=root / "postgres",
        dockerfile="Dockerfile",
        tag=OFFLINE_POSTGRES_IMAGE,
        buildargs={"BASE_IMAGE": base},
        log=log,
    )
    return OFFLINE_POSTGRES_IMAGE
