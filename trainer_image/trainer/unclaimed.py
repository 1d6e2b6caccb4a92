"""RUNNING trials that no worker claimed: failed, so that they stop holding the budget.

A worker creates its next trial (Optuna's own transaction), then claims it: labels and a first
heartbeat, in the budget's transaction (``trainer.budget``). Should anything come between the two
(the sampler raising as the trial is made, the database going away, the worker killed), the trial
stays RUNNING with no heartbeat: Optuna never counts it stale, no launcher knows whose it is, and
since RUNNING trials fill the budget, every worker then waits for it for good. A trial seen so
for a whole grace period is failed; hpo claims its trials within milliseconds of making them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState
from sqlalchemy import text

__all__ = ["UNCLAIMED_REASON", "UnclaimedTrials", "abandon"]

UNCLAIMED_REASON = "never claimed by a worker (it ended while the trial was being made)"
_UNCLAIMED = text(
    """
    SELECT trials.trial_id FROM trials
    LEFT JOIN trial_heartbeats ON trial_heartbeats.trial_id = trials.trial_id
    WHERE trials.study_id = :study_id AND trials.state = 'RUNNING'
      AND trial_heartbeats.trial_id IS NULL
    """
)


class UnclaimedTrials:
    """Fails the study's RUNNING trials that have stayed without a heartbeat for ``grace_s``.

    Time is this process's own clock from when it first saw a trial so, not the trial's start:
    that is the clock of whichever machine made it, and machines' clocks (and time zones) differ.
    """

    def __init__(
        self,
        storage: RDBStorage,
        study_id: int,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.study_id = study_id
        self.grace_s = grace_s
        self.clock = clock
        self._first_seen: dict[int, float] = {}

    def reap(self) -> list[int]:
        """Fail those seen unclaimed for the grace period; their trial ids."""
        with self.storage.engine.connect() as connection:
            found = connection.execute(_UNCLAIMED, {"study_id": self.study_id}).scalars().all()
        now = self.clock()
        self._first_seen = {int(i): self._first_seen.get(int(i), now) for i in found}
        overdue = [i for i, seen in self._first_seen.items() if now - seen >= self.grace_s]
        for trial_id in overdue:
            abandon(self.storage, trial_id, UNCLAIMED_REASON)
            del self._first_seen[trial_id]
        return overdue


def abandon(storage: BaseStorage, trial_id: int, reason: str) -> None:
    """Mark a trial no one will run FAIL, with why; one that has ended meanwhile stays as it is."""
    with contextlib.suppress(UpdateFinishedTrialError):
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
