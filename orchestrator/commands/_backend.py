"""The backend ``hpo launch`` asked for, checked before anything starts.

Every check that can refuse a launch runs here, before Postgres or any container is started:
the engine answers, the image exists (the trainer image is built when missing), the workers fit
the machine, no worker of an earlier launch of the same study still runs, and containers can
reach the GPUs asked for (a throw-away container, the one container started before Postgres).
"""

from __future__ import annotations

import enum
import importlib.util
import os
from contextlib import suppress
from pathlib import Path

import docker
from docker.errors import NotFound

from orchestrator import engine, images
from orchestrator.backends import (
    LAUNCH_LABEL,
    Backend,
    DockerBackend,
    LocalBackend,
    WorkerResources,
    check_capacity,
    check_gpu_access,
    check_gpus,
    gpu_ids,
    host_gpu_ids,
    visible_gpus,
)
from orchestrator.compose_context import compose_context
from orchestrator.console import stderr, stdout
from orchestrator.engine import translated
from orchestrator.errors import ConfigError
from orchestrator.settings import (
    PYTHON_BASE_IMAGE,
    TRAINER_IMAGE,
    Instance,
    config_dir,
    source_root,
)

__all__ = ["BackendName", "make_backend"]


class BackendName(enum.StrEnum):
    """Where workers run."""

    docker = "docker"
    local = "local"


def make_backend(
    name: BackendName,
    study: str,
    image: str,
    resources: WorkerResources,
    workers: int,
    *,
    launch_id: str,
) -> Backend:
    """The chosen backend, ready to start ``workers`` workers of ``study`` for ``launch_id``.

    Raises:
        BackendError: The Docker engine is unreachable or refused a request.
        ConfigError: The image is missing (and is not hpo's to build), the workers do not fit the
            machine, containers cannot reach the GPUs asked for, or an earlier launch's workers
            of the study still run.
    """
    if name is BackendName.local:
        _check_trainer_installed()
        local_gpus = host_gpu_ids(os.environ)
        hidden = "CUDA_VISIBLE_DEVICES" in os.environ  # a scheduler's share, or none on purpose
        check_gpus(
            resources.gpus, len(local_gpus), "CUDA_VISIBLE_DEVICES names none" if hidden else None
        )
        return LocalBackend(resources.gpus, local_gpus)
    if not image.strip():
        raise ConfigError(f"`--image` names no image; leave it out for {TRAINER_IMAGE}:latest.")
    client = engine.connect()
    gpus = visible_gpus()
    with translated("reading the engine's resources"):
        info = client.info()
    check_capacity(info, resources, workers, gpus)
    _ensure_image(client, image)
    instance = Instance.from_env()
    _clear_earlier_workers(client, instance, study)
    if resources.gpus:
        first_gpus = gpu_ids(0, resources.gpus, gpus)
        check_gpu_access(client, image, first_gpus, {**instance.labels, LAUNCH_LABEL: launch_id})
    stack = compose_context(client)  # inside `docker compose up`: the project's network, labels
    return DockerBackend(
        client,
        image=image,
        network=stack.network if stack else instance.network,
        launch_id=launch_id,
        labels={**(stack.labels if stack else {}), **instance.labels},
        resources=resources,
        secrets_dir=config_dir() / "secrets" / launch_id,
        gpus_available=gpus,
        machine=str(info["Name"]),
    )


def _check_trainer_installed() -> None:
    """Local workers run this interpreter's ``python -m trainer.worker``: it needs the extra.

    Found, not imported: importing torch and Lightning here would cost the launch seconds.
    """
    missing = [name for name in ("torch", "lightning") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"`--backend local` runs the workers here and needs the trainer extra "
            f"({', '.join(missing)} missing): pip install 'hpo[trainer]', or use the default "
            "docker backend."
        )


def _ensure_image(client: docker.DockerClient, image: str) -> None:
    """Build the trainer image on first use, or again when it is older than the source tree.

    A user's image must exist already; one built FROM an older trainer image gets a warning.
    """
    labels = images.image_labels(client, image)
    root = source_root()
    current = images.source_digest(root) if root is not None else None
    stale = current is not None and (labels or {}).get(images.SOURCE_LABEL) != current
    if image.partition(":")[0] != TRAINER_IMAGE:
        _check_users_image(image, labels is not None, stale)
    elif root is None:
        if labels is None:
            raise ConfigError(
                f"no image `{image}` and no hpo source tree to build it: `hpo image build`."
            )
    elif labels is None:
        _build_trainer_image(client, root, "building the trainer image (first use)")
    elif stale:
        _build_trainer_image(client, root, "rebuilding the trainer image (older than the source)")


def _check_users_image(image: str, exists: bool, stale: bool) -> None:
    if not exists:
        raise ConfigError(
            f"no image `{image}`: build it first (`docker build -t {image} ...`, FROM "
            f"{TRAINER_IMAGE}:latest)."
        )
    if stale:
        stderr.print(
            f"warning: `{image}` was built FROM an older {TRAINER_IMAGE} than this hpo; if its "
            f"workers fail, build it again FROM {TRAINER_IMAGE}:latest (after `hpo image build`).",
            soft_wrap=True,
        )


def _build_trainer_image(client: docker.DockerClient, root: Path, why: str) -> None:
    with stdout.status(why) as status:

        def log(line: str) -> None:
            status.update(f"[bold]building[/] {line[:100]}")

        images.build_trainer_image(client, root, base=PYTHON_BASE_IMAGE, log=log)


def _clear_earlier_workers(client: docker.DockerClient, instance: Instance, study: str) -> None:
    """Remove ended worker containers of ``study``; refuse while an earlier launch's still run.

    Containers are named ``hpo-<study>-w<k>``: a running one would clash with this launch's.
    """
    labels = [f"{key}={value}" for key, value in instance.labels.items()]
    selector: dict[str, str | list[str] | bool] = {"label": [*labels, f"hpo.study={study}"]}
    with translated("listing earlier worker containers"):
        found = client.containers.list(all=True, ignore_removed=True, filters=selector)
    running = [c.name for c in found if c.status in ("running", "created", "restarting")]
    if running:
        raise ConfigError(
            f"{len(running)} worker container(s) of `{study}` from an earlier launch still run "
            f"({', '.join(sorted(str(n) for n in running))}): `hpo stop {study}` stops them."
        )
    with translated("removing ended worker containers"):
        for container in found:
            with suppress(NotFound):
                container.remove(force=True)
