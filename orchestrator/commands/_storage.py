"""Which database a command uses: ``--storage``/``HPO_STORAGE``, else the managed Postgres."""

from __future__ import annotations

from orchestrator import engine, images
from orchestrator.console import stdout
from orchestrator.database import ManagedPostgres
from orchestrator.errors import ConfigError
from orchestrator.settings import POSTGRES_IMAGE, Instance, source_root

STORAGE_HELP = (
    "Storage URL (postgresql+psycopg://...); default: the managed Postgres of `hpo db up`."
)


def resolve_storage(explicit: str | None, *, start: bool) -> str:
    """The storage URL for this host; see ``resolve_storage_pair``."""
    return resolve_storage_pair(explicit, start=start)[0]


def resolve_storage_pair(explicit: str | None, *, start: bool) -> tuple[str, str]:
    """The storage URL for this host and the one for worker containers.

    The managed Postgres is started first when ``start`` and it is not up; an explicit URL is the
    same for both.

    Raises:
        ConfigError: No ``--storage`` and no managed database (and not asked to start one).
        BackendError: The engine is unreachable or the database would not start.
    """
    if explicit:
        return explicit, explicit
    managed = ManagedPostgres(engine.connect(), Instance.from_env())
    if managed.status().state != "running":
        if not start:
            raise ConfigError(
                "no `--storage` given and the managed database is not running: `hpo db up`."
            )
        with stdout.status("starting the managed Postgres"):
            image = images.ensure_postgres_image(
                managed.client, POSTGRES_IMAGE, source_root(), lambda _: None
            )
            managed.up(image)
    return managed.url(reveal=True), managed.url(reveal=True, from_network=True)
