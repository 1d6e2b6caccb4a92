"""Names and places hpo owns: one *instance* per machine by default, more for isolated tests.

Every Docker object hpo creates is named from the instance (``hpo-postgres``, ``hpo-net``,
``hpo-pgdata``) and labelled ``hpo.instance=<name>``, so two instances (a user's, and a test
run's) never touch each other's containers, networks or data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import typer

from orchestrator.errors import ConfigError

__all__ = ["Instance", "config_dir", "source_root"]

_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
INSTANCE_LABEL = "hpo.instance"
DEFAULT_INSTANCE = "hpo"
TRAINER_IMAGE = "hpo-trainer"
POSTGRES_IMAGE = "postgres:16-bookworm"
OFFLINE_POSTGRES_IMAGE = "hpo-postgres:15"
OFFLINE_BASE_IMAGE = "hpo-base:bookworm"
PYTHON_BASE_IMAGE = "python:3.11-slim-bookworm"


@dataclass(frozen=True)
class Instance:
    """The names of one hpo installation's Docker objects.

    Args:
        name: Lower-case letters, digits and dashes; from ``HPO_INSTANCE``, default ``hpo``.

    Raises:
        ConfigError: The name would not make valid Docker names.
    """

    name: str = DEFAULT_INSTANCE

    def __post_init__(self) -> None:
        if not _INSTANCE_NAME.match(self.name):
            rule = "1-40 lower-case letters, digits or dashes"
            raise ConfigError(f"`HPO_INSTANCE` must be {rule}, got {self.name!r}.")

    @classmethod
    def from_env(cls) -> Instance:
        """The instance named by ``HPO_INSTANCE``, else the default."""
        return cls(os.environ.get("HPO_INSTANCE", DEFAULT_INSTANCE))

    @property
    def postgres_container(self) -> str:
        """Name of the managed Postgres container, also its host name on the network."""
        return f"{self.name}-postgres"

    @property
    def postgres_volume(self) -> str:
        """Named volume holding the database files; survives ``hpo db down``."""
        return f"{self.name}-pgdata"

    @property
    def network(self) -> str:
        """Private bridge network shared by Postgres and the workers."""
        return f"{self.name}-net"

    @property
    def labels(self) -> dict[str, str]:
        """Labels every object of this instance carries."""
        return {INSTANCE_LABEL: self.name}


def config_dir() -> Path:
    """Per-user config folder (``$XDG_CONFIG_HOME/hpo``, usually ``~/.config/hpo``)."""
    return Path(typer.get_app_dir("hpo"))


def source_root() -> Path | None:
    """The hpo source tree (holding ``trainer_image/Dockerfile``) this package runs from, if any.

    Images are built from a source tree: an editable install finds its own; otherwise the
    current folder is tried.
    """
    here = Path(__file__).resolve().parent.parent
    for candidate in (here, Path.cwd()):
        if (candidate / "trainer_image" / "Dockerfile").is_file():
            return candidate
    return None
