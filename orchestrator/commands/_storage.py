"""Which database a command uses: ``--storage``/``HPO_STORAGE``, else the managed Postgres.

An explicit URL may leave its password out and name a file holding it in
``HPO_STORAGE_PASSWORD_FILE`` (a Docker secret, in the compose stack): the password then never
shows in ``docker inspect``, a process list or a compose file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from orchestrator import engine, images
from orchestrator.console import stdout
from orchestrator.database import SCHEME, ManagedPostgres
from orchestrator.errors import ConfigError
from orchestrator.hosts import is_loopback
from orchestrator.settings import POSTGRES_IMAGE, Instance, source_root

PASSWORD_FILE_ENV = "HPO_STORAGE_PASSWORD_FILE"
STORAGE_HELP = (
    "Postgres URL (postgresql://user:password@host:port/db); default: the managed Postgres of "
    "`hpo db up`."
)
# The `--storage` option of every command that reads studies.
StorageOption = Annotated[
    str | None, typer.Option(envvar="HPO_STORAGE", help=STORAGE_HELP, show_default=False)
]


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
        url = _with_password_file(_with_driver(explicit), os.environ.get(PASSWORD_FILE_ENV))
        return url, url
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


def check_reachable_from_containers(explicit: str) -> None:
    """Refuse a ``--storage`` host that only this machine can reach, before anything starts.

    Inside a worker container, 127.0.0.1 and ``localhost`` are the container itself, and a URL
    with no host is this machine's Unix socket: every worker would fail to connect, after the
    study was created. A URL that is not Postgres's is left to the checks that refuse it.

    Raises:
        ConfigError: The URL's host is a loopback or unspecified address, or missing.
    """
    try:
        url = make_url(explicit)
    except ArgumentError:
        return
    if not url.drivername.startswith("postgres"):  # SQLite and the like: refused later, as such
        return
    host = url.host or url.query.get("host")  # libpq also takes `?host=`
    if isinstance(host, tuple):  # `?host=a&host=b`: libpq tries each in turn
        host = host[0]
    if host and not host.startswith("/") and not is_loopback(host):
        return
    where = (
        f"`{host}`, which inside a worker container is the container itself"
        if host and not host.startswith("/")
        else "this machine's Unix socket, which worker containers cannot reach"
    )
    raise ConfigError(
        f"`--storage` names {where}: give a host name or address the containers reach, "
        "leave `--storage` out for the managed database, or use `--backend local`."
    )


def _with_driver(url: str) -> str:
    """Name psycopg (3) in a ``postgres://`` or ``postgresql://`` URL, as psql and hosts write it.

    Without a driver, SQLAlchemy before 2.1 picks psycopg2, which hpo does not install.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        return f"{SCHEME}://{rest}"
    return url


def _with_password_file(url: str, password_file: str | None) -> str:
    """``url`` with the password read from ``password_file``, when one is named.

    Raises:
        ConfigError: The file cannot be read, or ``url`` is not a URL.
    """
    if not password_file:
        return url
    try:
        password = Path(password_file).read_text().strip()
        return make_url(url).set(password=password).render_as_string(hide_password=False)
    except OSError as e:
        raise ConfigError(
            f"{PASSWORD_FILE_ENV}: cannot read `{password_file}` ({e.strerror})."
        ) from None
    except ArgumentError:
        raise ConfigError("`--storage` is not a database URL (postgresql+psycopg://...).") from None
