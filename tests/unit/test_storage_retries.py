"""``with_retries``: which storage errors mean "the database went away" and are waited out."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from optuna.exceptions import StorageInternalError
from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError
from trainer import storage
from trainer.storage import StorageError, with_retries

_SHUTDOWN = "terminating connection due to administrator command"


def _lost_connection() -> OperationalError:
    return OperationalError("SELECT trials.trial_id FROM trials", {}, Exception(_SHUTDOWN))


def _raise_lost_connection() -> None:
    raise _lost_connection()


def _raise_commit_failure() -> None:
    """What Optuna raises when the connection dies during a commit."""
    raise StorageInternalError("An exception is raised during the commit.") from _lost_connection()


def _raise_failed_fallback_query() -> None:
    """What ``RDBStorage._get_trials`` raises when Postgres restarts during its query.

    It catches the ``OperationalError`` and runs a second query on the same session; SQLAlchemy
    refuses it, and Optuna wraps that refusal, so the lost connection is only the context.
    """
    try:
        raise _lost_connection()
    except OperationalError:
        try:
            raise PendingRollbackError(
                "Can't reconnect until invalid transaction is rolled back.", None, None
            )
        except PendingRollbackError as refusal:
            raise StorageInternalError("An exception is raised during the commit.") from refusal


def _raise_integrity_error() -> None:
    duplicate = IntegrityError("INSERT", {}, Exception("duplicate key"))
    raise StorageInternalError("An exception is raised during the commit.") from duplicate


def _fails_then_succeeds(failure: Callable[[], None], times: int) -> Callable[[], str]:
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            failure()
        return f"done after {calls['n']} calls"

    return action


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage.time, "sleep", lambda _s: None)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(_raise_lost_connection, id="operational-error"),
        pytest.param(_raise_commit_failure, id="commit-failure"),
        pytest.param(_raise_failed_fallback_query, id="failed-fallback-query"),
    ],
)
def test_a_lost_connection_is_retried_until_the_database_is_back(
    failure: Callable[[], None],
) -> None:
    assert with_retries(_fails_then_succeeds(failure, times=2), for_s=60) == "done after 3 calls"


def test_a_database_that_stays_away_ends_in_a_storage_error_naming_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(storage.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(StorageError, match=f"unreachable for 30 s: {_SHUTDOWN}"):
        with_retries(_fails_then_succeeds(_raise_failed_fallback_query, times=1000), for_s=30)


def test_a_long_outage_is_said_at_once_then_every_30_s_not_at_every_retry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = iter(range(0, 1000, 5))  # each retry finds the clock 5 s later
    monkeypatch.setattr(storage.time, "monotonic", lambda: float(next(clock)))
    with caplog.at_level(logging.WARNING, logger="trainer.storage"), pytest.raises(StorageError):
        with_retries(_fails_then_succeeds(_raise_lost_connection, times=1000), for_s=100)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 4  # at 5, 35, 65 and 95 s of 19 retries
    assert said[-1] == f"database unreachable for 95 s ({_SHUTDOWN}); retrying for up to 5 s"


def test_a_real_storage_error_is_raised_at_once() -> None:
    action = _fails_then_succeeds(_raise_integrity_error, times=1)
    with pytest.raises(StorageInternalError) as raised:
        with_retries(action, for_s=60)
    assert isinstance(raised.value.__cause__, IntegrityError)


def test_a_stop_during_an_outage_ends_the_wait_at_once() -> None:
    tries: list[int] = []

    def lost_connection() -> None:
        tries.append(1)
        _raise_lost_connection()

    def stopped(_seconds: float) -> None:
        raise KeyboardInterrupt  # what `SignalledStop.sleep` does once Ctrl-C came

    with pytest.raises(KeyboardInterrupt):
        with_retries(lost_connection, for_s=60, sleep=stopped)
    assert len(tries) == 1  # no retry after the stop
