"""Images hpo runs: the trainer image and, where none can be pulled, Postgres and a base image.

Everything builds offline: Python packages come from a wheelhouse made on the host, and the base
image is bootstrapped from Debian's archive when no registry answers.
"""

from __future__ import annotations

from orchestrator.images._base import ensure_base_image
from orchestrator.images._build import BuildLog, build_image
from orchestrator.images._engine_images import image_exists, image_labels
from orchestrator.images._postgres import ensure_postgres_image
from orchestrator.images._trainer import SOURCE_LABEL, build_trainer_image, source_digest
from orchestrator.images._wheelhouse import build_hpo_wheel, ensure_wheelhouse, requirements

__all__ = [
    "SOURCE_LABEL",
    "BuildLog",
    "build_hpo_wheel",
    "build_image",
    "build_trainer_image",
    "ensure_base_image",
    "ensure_postgres_image",
    "ensure_wheelhouse",
    "image_exists",
    "image_labels",
    "requirements",
    "source_digest",
]
