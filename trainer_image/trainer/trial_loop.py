"""One trial's life inside a worker: attrs, heartbeat, run, tell, retry."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from trainer.heartbeat import Heartbeat
from trainer.objective import TrialRunner
from trainer.storage import with_retries

__all__ = ["TrialLoop", "WorkerStopped"]

log = logging.getLogger("trainer.worker")
_REASON_CHARS = 500


class WorkerStopped(BaseException):
    """SIGTERM arrived: fail the current trial (never leave it RUNNING), then leave."""


@dataclass(frozen=True)
class TrialLoop:
    """What a worker needs to run trials of its study."""

    study: optuna.Study
    storage: RDBStorage
    study_id: int
    runner: TrialRunner
    worker_id: int
    retry: Callable[[optuna.Study, FrozenTrial], None]

    @property
    def grace_s(self) -> float:
        """How long database outages are ridden out."""
        return self.runner.spec.resilience.grace_s

    def run_one(self, trial: optuna.Trial) -> None:
        """Run ``trial`` under a heartbeat and record its end; a failure is retried if allowed."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        trial.set_user_attr("worker", self.worker_id)
        trial.set_user_attr("host", socket.gethostname())
        try:
            with Heartbeat(self.storage, trial_id, self.runner.spec.resilience.heartbeat_s):
                values = self.runner(trial)
        except optuna.TrialPruned:
            self._tell(trial, trial_id, state=TrialState.PRUNED)
            return
        except WorkerStopped:
            self._fail(trial, trial_id, "worker stopped (SIGTERM)")
            raise
        except Exception as e:
            log.exception("trial %d failed", trial.number)
            if self._fail(trial, trial_id, f"{type(e).__name__}: {e}"[:_REASON_CHARS]):
                self.retry(self.study, self.storage.get_trial(trial_id))
            return
        self._tell(trial, trial_id, values=values)

    def _fail(self, trial: optuna.Trial, trial_id: int, reason: str) -> bool:
        """Mark FAIL with its reason; False when someone else had already finished it."""
        try:
            with_retries(lambda: trial.set_user_attr("fail_reason", reason), self.grace_s)
        except UpdateFinishedTrialError:
            return self._already_finished(trial)
        return self._tell(trial, trial_id, state=TrialState.FAIL)

    def _tell(self, trial: optuna.Trial, trial_id: int, **outcome: Any) -> bool:
        """``study.tell``; a trial the reaper already failed is logged, not fatal (False)."""
        if self.storage.get_trial(trial_id).state.is_finished():
            return self._already_finished(trial)
        try:
            with_retries(
                lambda: self.study.tell(trial, skip_if_finished=True, **outcome), self.grace_s
            )
        except UpdateFinishedTrialError:
            return self._already_finished(trial)
        return True

    def _already_finished(self, trial: optuna.Trial) -> bool:
        log.warning(
            "trial %d was already finished elsewhere (failed after a missed heartbeat?); "
            "its result is dropped",
            trial.number,
        )
        return False
