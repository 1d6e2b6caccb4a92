"""Open the study database the same way everywhere: explicit engine settings, errors translated.

Each process gets one SQLAlchemy engine with a small pool and no overflow, so N workers hold
O(N) connections (Postgres allows 100); ``pool_pre_ping`` drops connections that a Postgres
restart killed (Optuna turns it on only for MySQL); a connect timeout makes an unreachable server
fail fast; the application name ``hpo-<study>`` makes the connections visible in
``pg_stat_activity``.
"""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from trainer.errors import ConfigError, HpoError

__all__ = [
    "CONNECTIONS_PER_WORKER",
    "RETRY_WARNING_EVERY_S",
    "StorageError",
    "StudyDeleted",
    "check_study_name",
    "connection_failure",
    "max_connections",
    "open_storage",
    "quiet_optuna",
    "raise_if_deleted",
    "where",
    "with_retries",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTIONS_PER_WORKER = 3  # pool of 2 (main thread, heartbeat thread) + the budget lock
CONNECT_TIMEOUT_S = 10
# Retries say that the database is unreachable at once, then at most this often: a
# `--db-outage` of minutes would otherwise fill a worker's log and the launch's screen.
RETRY_WARNING_EVERY_S = 30.0
_SCHEMA_LOCK = 0x48504F53  # "HPOS": one key for the whole database
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

StaleCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


class StorageError(HpoError):
    """The study database cannot be reached or used; messages never include the password."""


class StudyDeleted(StorageError):
    """The study went from the database while it ran (``hpo delete --yes`` from elsewhere)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"study `{name}` was deleted from the database while it ran")


def raise_if_deleted(storage: optuna.storages.BaseStorage, name: str) -> None:
    """After Optuna's bare ``KeyError('Record does not exist.')``: say so if the study is gone.

    Raises:
        StudyDeleted: It is; otherwise the caller re-raises its ``KeyError`` (a real fault).
    """
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        raise StudyDeleted(name) from None


def quiet_optuna() -> None:
    """Silence, in entry points, Optuna's warnings about features hpo uses on purpose.

    Heartbeats and stale-trial reaping are "experimental" to Optuna; its warnings about them, and
    its INFO line per study, would be noise in every worker log.
    """
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Workers use ask/tell (the budget is reserved before a trial exists) with their own
    # heartbeat thread, so Optuna's hint to use optimize() for heartbeats does not apply.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.storages._rdb.storage").addFilter(_drop_fallback_query_warning)


def _drop_fallback_query_warning(record: logging.LogRecord) -> bool:
    """Drop Optuna's "Caught an error from sqlalchemy ... Falling back" warning.

    On Postgres only a lost connection triggers it, and it prints the whole SQL query in the
    middle of the live view; ``with_retries`` reports the outage in one line instead. A fallback
    query that fails raises, so nothing is hidden.
    """
    return not record.getMessage().startswith("Caught an error from sqlalchemy")


def check_study_name(name: str) -> str:
    """Study names become container and run names: ASCII letters, digits, ``_ . -``, <= 100.

    Raises:
        ConfigError: The name breaks that rule.
    """
    if not _STUDY_NAME.match(name):
        raise ConfigError(
            "`--study` must be 1-100 ASCII letters, digits, `_`, `.` or `-`, starting with a "
            f"letter or digit; got {name!r}."
        )
    return name


def where(url: str) -> str:
    """``host:port/database`` of a storage URL, for messages (never the password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparsable storage URL>"
    if not parsed.drivername.startswith("postgresql"):  # e.g. a SQLite file, refused as such
        return parsed.render_as_string(hide_password=True)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def engine_kwargs(study_name: str, pool_size: int = 2) -> dict[str, Any]:
    """SQLAlchemy engine settings for one process of ``study_name``."""
    return {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_pre_ping": True,
        "connect_args": {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": f"hpo-{study_name}"[:63],
        },
    }


def open_storage(
    url: str,
    study_name: str,
    *,
    heartbeat_s: int | None = None,
    grace_s: int | None = None,
    stale_callback: StaleCallback | None = None,
) -> RDBStorage:
    """An ``RDBStorage`` for ``study_name``, its tables created on first use.

    Raises:
        ConfigError: ``url`` is not a PostgreSQL URL.
        StorageError: The server cannot be reached or refused the login (host and port named).
    """
    _require_postgres(url)
    with _unusable_as(url), _plain_connection(url, study_name) as connection:
        # Two processes creating the schema at once (two launches on a new database) collide
        # in Postgres' catalog ("duplicate key ... pg_type_typname_nsp_index"): one at a time.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _SCHEMA_LOCK})
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs(study_name),
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=stale_callback,
            )
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _SCHEMA_LOCK})


def max_connections(url: str, study_name: str) -> int:
    """The server's ``max_connections``, over one plain connection: Optuna's tables untouched.

    Raises:
        ConfigError: ``url`` is not a PostgreSQL URL.
        StorageError: As ``open_storage``.
    """
    _require_postgres(url)
    with _unusable_as(url), _plain_connection(url, study_name) as connection:
        return int(connection.execute(text("SHOW max_connections")).scalar_one())


def _require_postgres(url: str) -> None:
    if not url.startswith("postgresql"):
        raise ConfigError(
            f"`--storage` must be a PostgreSQL URL (postgresql+psycopg://...), got {where(url)}; "
            "SQLite is not offered for parallel work."
        )


@contextmanager
def _unusable_as(url: str) -> Iterator[None]:
    """The driver's or SQLAlchemy's error as one ``StorageError`` line naming the server."""
    try:
        yield
    except (SQLAlchemyError, ImportError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"cannot use the study database at {where(url)}: {reason}") from e


@contextmanager
def _plain_connection(url: str, study_name: str) -> Iterator[Connection]:
    """One connection of its own, closed on leaving (no pool is kept)."""
    engine = create_engine(
        url, poolclass=NullPool, connect_args=engine_kwargs(study_name)["connect_args"]
    )
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def with_retries(
    action: Callable[[], T], for_s: float, sleep: Callable[[float], None] | None = None
) -> T:
    """Run ``action``; while the database is unreachable (a restart), retry for ``for_s`` seconds.

    ``sleep`` (default ``time.sleep``) waits between tries: the launcher's ends early when the
    user stops the launch, so that Ctrl-C during an outage does not wait out the grace period.

    Raises:
        StorageError: Still unreachable after ``for_s`` seconds.
    """
    started = time.monotonic()
    deadline = started + for_s
    said = -math.inf
    wait = 0.5
    while True:
        try:
            return action()
        except (OperationalError, StorageInternalError) as e:
            cause = connection_failure(e)
            if cause is None:
                raise
            now = time.monotonic()
            if now + wait > deadline:
                message = f"the study database stayed unreachable for {for_s:.0f} s: {cause}"
                raise StorageError(message) from e
            if now - said >= RETRY_WARNING_EVERY_S:  # a long outage: a line now and then
                _say_unreachable(cause, now - started, deadline - now)
                said = now
            (sleep or time.sleep)(wait)
            wait = min(wait * 2, 5.0)


def _say_unreachable(cause: BaseException, waited_s: float, left_s: float) -> None:
    since = f" for {waited_s:.0f} s" if waited_s >= 1 else ""
    log.warning("database unreachable%s (%s); retrying for up to %.0f s", since, cause, left_s)


def connection_failure(error: BaseException) -> BaseException | None:
    """The driver's error when ``error`` means "connection lost", else None (a real error).

    The lost connection may sit anywhere in the exception chain: Optuna wraps an
    ``OperationalError`` raised during a commit in ``StorageInternalError``, and when a query
    fails, ``RDBStorage._get_trials`` retries it on the same session, whose "Can't reconnect
    until invalid transaction is rolled back" is what Optuna then wraps.
    """
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, OperationalError):
            return link.orig or link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None
