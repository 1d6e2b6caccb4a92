"""A trial heartbeat that outlives database errors.

Optuna's own heartbeat thread ends at the first database error (a Postgres restart, say); the
live trial then goes stale and a peer fails it under the worker's feet. This one logs the error
and tries again with backoff until the trial ends.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from optuna.storages import RDBStorage
from sqlalchemy.exc import SQLAlchemyError

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
        while not self.stopped.wait(timeout=wait):
            try:
                self.storage.record_heartbeat(self.trial_id)
                wait = self.interval_s
            except SQLAlchemyError as e:
                # Retry sooner than the interval, so one lost beat does not cost the grace period.
                wait = max(self.interval_s / 4, 0.25)
                log.warning("heartbeat of trial id %s failed (%s); retrying", self.trial_id, e)
