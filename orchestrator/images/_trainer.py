"""The trainer image: wheelhouse, base image, then a build with no network inside."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from orchestrator import __version__
from orchestrator.engine import translated
from orchestrator.images._base import ensure_base_image
from orchestrator.images._build import BuildLog, build_image
from orchestrator.images._wheelhouse import build_hpo_wheel, ensure_wheelhouse
from orchestrator.settings import TRAINER_IMAGE

__all__ = ["SOURCE_LABEL", "build_trainer_image", "source_digest"]

DOCKERFILE = "trainer_image/Dockerfile"
BUILDER_STAGE_LABEL = "hpo.stage=builder"  # set in the Dockerfile's first stage
SOURCE_LABEL = "hpo.source"  # the image's `source_digest`; images built FROM it inherit it
# What the image is built from (hpo's wheel holds both packages: the compose stack's orchestrator
# runs from the same image), and what never counts: bytecode and the extension built in place.
_SOURCES = ("pyproject.toml", "orchestrator", "trainer_image", "csrc")
_NOT_SOURCES = (".pyc", ".so")


def build_trainer_image(
    client: docker.DockerClient,
    root: Path,
    *,
    base: str,
    log: BuildLog,
    nocache: bool = False,
) -> str:
    """Build ``hpo-trainer:<version>`` and ``hpo-trainer:latest`` from the source tree ``root``.

    Args:
        client: Engine client.
        root: The hpo source tree (holds ``trainer_image/Dockerfile``).
        base: Base image wanted; the offline base stands in when it cannot be pulled.
        log: Receives progress lines.
        nocache: Rebuild every layer.

    Returns:
        The image id.

    Raises:
        BackendError: No wheelhouse, no base image, or a failed build step.
    """
    replaced = _image_id(client, f"{TRAINER_IMAGE}:latest")
    ensure_wheelhouse(root, log)
    build_hpo_wheel(root, log)
    base_image = ensure_base_image(client, base, log)
    buildargs = {
        "BASE_IMAGE": base_image,
        "VERSION": __version__,
        "REVISION": _revision(root),
        "SOURCE_DIGEST": source_digest(root),
    }
    image_id = build_image(
        client,
        context=root,
        dockerfile=DOCKERFILE,
        tag=f"{TRAINER_IMAGE}:{__version__}",
        buildargs=buildargs,
        network_mode="none",
        nocache=nocache,
        log=log,
    )
    with translated(f"tagging {TRAINER_IMAGE}:latest"):
        client.api.tag(image_id, TRAINER_IMAGE, "latest")
    if replaced not in (None, image_id):
        _remove_unused(client, replaced, log)
    _remove_old_builder_stages(client, log)
    return image_id


def source_digest(root: Path) -> str:
    """A digest of the sources the trainer image is built from, in the source tree ``root``.

    A launch compares it with the image's ``SOURCE_LABEL``: after a ``git pull`` the image may
    be older than the code that starts its workers (a worker option it does not know yet).
    """
    digest = hashlib.sha256()
    for path in sorted(_source_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _source_files(root: Path) -> Iterator[Path]:
    for name in _SOURCES:
        top = root / name
        candidates = top.rglob("*") if top.is_dir() else [top]
        for path in candidates:
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path.suffix not in _NOT_SOURCES
            ):
                yield path


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.images.get(name).id)
    except ImageNotFound:
        return None


def _remove_unused(client: docker.DockerClient, image_id: str, log: BuildLog) -> None:
    """Remove the image a build replaced: untagged, it would stay as a dangling ~2 GB image.

    Kept while a tag of someone else's still names it (the engine would delete an image with
    one tag left, tag and all), and while a container (even a stopped one) uses it: then it is
    for ``docker image prune`` once it is free.
    """
    try:
        tags = client.images.get(image_id).tags
        if tags:
            log(f"kept the replaced image {image_id[:19]}: still tagged {', '.join(tags)}")
            return
        client.images.remove(image_id)
    except ImageNotFound:
        return
    except APIError as e:
        log(f"kept the replaced image {image_id[:19]}: {e.explanation or e}")
        return
    log(f"removed the replaced image {image_id[:19]}")


def _remove_old_builder_stages(client: docker.DockerClient, log: BuildLog) -> None:
    """Keep one untagged builder stage (the newest: the next build's cache), remove the others.

    Each build whose dependencies changed, and each clean-cache build, leaves a new ~2 GB stage
    image behind. Should a build have reused an older stage as its cache while a newer one
    exists (requirements switched back), that older one goes: the next such build is cold.
    """
    stages = client.images.list(filters={"dangling": True, "label": BUILDER_STAGE_LABEL})
    stages.sort(key=lambda image: image.attrs["Created"], reverse=True)
    for stage in stages[1:]:
        _remove_unused(client, str(stage.id), log)


def _revision(root: Path) -> str:
    """The source tree's git commit, with ``-dirty`` when it has uncommitted changes."""
    result = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"
