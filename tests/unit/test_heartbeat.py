"""A trial's heartbeat outlives a database outage: a dead one would get its live trial failed."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from optuna.exceptions import StorageInternalError
from sqlalchemy.exc import OperationalError
from trainer.heartbeat import Heartbeat

_REFUSED = "connection to server at 127.0.0.1, port 5432 failed: Connection refused"


class _Outage:
    """A storage whose first ``failures`` heartbeats fail as Optuna's RDBStorage reports a
    lost connection: ``StorageInternalError`` from SQLAlchemy's ``OperationalError``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.beats = 0
        self.resumed = threading.Event()

    def record_heartbeat(self, trial_id: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            lost = OperationalError("SELECT trial_heartbeats", {}, Exception(_REFUSED))
            raise StorageInternalError("An exception is raised during the commit.") from lost
        self.beats += 1
        self.resumed.set()


def test_a_heartbeat_beats_again_once_the_database_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage: Any = _Outage(failures=5)
    beating = Heartbeat(storage, trial_id=7, interval_s=0.01)
    with caplog.at_level(logging.WARNING, logger="trainer.heartbeat"), beating as heartbeat:
        assert storage.resumed.wait(timeout=30)
        assert heartbeat.thread.is_alive()
    assert storage.beats >= 1
    # Once per outage, not once per failed beat, and with the driver's reason alone.
    assert [r.getMessage() for r in caplog.records] == [
        f"heartbeat of trial id 7 failed ({_REFUSED}); retrying"
    ]
