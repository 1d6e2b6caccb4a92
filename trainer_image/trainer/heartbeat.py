"""A trial heartbeat that outlives database errors.

Optuna's own heartbeat thread ends at the first database error (a Postgres restart, say); the
live trial then goes stale and a peer fails it under the worker's feet. This one logs the error
and tries again with backoff until the trial ends.

Optuna's storage reports a lost connection as ``StorageInternalError`` (its wrapper of whatever
SQLAlchemy raised inside a session), not as the ``SQLAlchemyError`` itself: both are caught.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from types import TracebackType

from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from sqlalchemy.exc import SQLAlchemyError

from trainer.storage import RETRY_WARNING_EVERY_S, connection_failure

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """``with Heartbeat(storage, trial_id, interval_s):`` beats every ``interval_s`` until exit.

    The first beat is not this one's: ``BudgetGate.reserve`` records it with the trial.
    """

    def __init__(self, storage: RDBStorage, trial_id: int, interval_s: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        wait = self.interval_s
        said = -math.inf  # when a failure was last logged: an outage of minutes says it rarely
        while not self.stopped.wait(timeout=wait):
            try:
                self.storage.record_heartbeat(self.trial_id)
                wait = self.interval_s
                said = -math.inf
            except (SQLAlchemyError, StorageInternalError) as e:
                # Retry sooner than the interval, so one lost beat does not cost the grace period.
                wait = max(self.interval_s / 4, 0.25)
                if time.monotonic() - said >= RETRY_WARNING_EVERY_S:
                    cause = connection_failure(e) or e
                    log.warning(
                        "heartbeat of trial id %s failed (%s); retrying", self.trial_id, cause
                    )
                    said = time.monotonic()
